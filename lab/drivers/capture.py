"""HDMI capture: frames from a capture card or an HDMI-to-IP encoder, with time, sequence and a ring.

``Capture(url)`` runs ``cv2.VideoCapture`` on the rig's ``video.url`` -- a device index (``0``),
a file, an HTTP MJPEG stream, ``udp://``/``rtp://`` MPEG-TS, ``rtsp://`` -- in a grabber thread:

* Every frame is a :class:`~lab.video.frame.Frame` with its frame time and a sequence number that
  counts the frames the source produced. Frame time comes from the source's own clock where it
  has one (:attr:`Capture.time_source`): ``"pts"`` for streams FFmpeg decodes (MPEG-TS/RTP PTS over
  UDP, RTSP, HTTP), ``"x-timestamp"`` for multipart MJPEG whose parts carry ``X-Timestamp`` (read
  here, part by part: :mod:`lab.drivers.mjpeg_http`), mapped onto ``time.monotonic()`` with the
  start-up burst back-dated (:mod:`lab.drivers.stream_clock`); ``"arrival"`` otherwise. Drops come
  from PTS gaps or the part's ``X-Frame-Seq``; only unstamped sources fall back to guessing from
  arrival times at a known rate (``fps_hint``). ``frame.meta["arrival"]`` keeps the arrival time.
  Missing frames show as gaps in ``seq`` and are counted in :attr:`Capture.dropped`. Frames a
  consumer was too slow to take are skipped (so it stays live) and counted in
  :attr:`Capture.consumer_dropped`.
* :meth:`next_frame` / :meth:`frames` wait for new frames on a condition variable;
  :meth:`latest` gives the newest.
* "No signal" (no frames for ``no_signal_after`` seconds: the box is off, the encoder has no
  input) is told apart from a black picture (frames that are black): :meth:`has_signal`,
  :attr:`signal`. A stream that ends is reopened with backoff, so the picture comes back when
  the box powers on again.
* An instrument that cannot be reached (connection refused, device missing) for ``lost_after``
  seconds is "lost": waiting calls raise :class:`~lab.errors.InfraError` (instrument ``video``).
* The last ``ring_seconds`` are kept compressed (an MJPEG source's own JPEG bytes, untouched;
  other sources re-encoded) for :meth:`save_clip`, so 10 s of 720p25 stays in the tens of MB.

Example::

    with Capture.from_rig(rig) as cap:
        frame = cap.next_frame(timeout=5)
        for frame in cap.frames(timeout=10):
            if not is_black(frame):
                break
        assert cap.has_signal()
        cap.save_clip("reports/run/stb-a/last5s.avi", seconds=5)
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import cv2
import numpy as np

from lab.drivers.mjpeg_http import MjpegHttpReader, NotMultipart, part_stamp
from lab.drivers.ring import FrameRing, RingEntry
from lab.drivers.stream_clock import PtsClock, Stamped
from lab.errors import InfraError, StblabError, TestError
from lab.steps import step
from lab.video.frame import Frame

__all__ = ["Capture", "CaptureTimeout", "Signal", "SIGNAL", "NO_SIGNAL", "LOST"]


class Signal(str):
    """The capture's input state; a string (``"signal"``, ``"no-signal"``, ``"lost"``) that is
    truthy only while there is a signal, so ``if capture.signal:`` reads as it should."""

    def __bool__(self) -> bool:
        return self == "signal"


SIGNAL = Signal("signal")
NO_SIGNAL = Signal("no-signal")
LOST = Signal("lost")

_NETWORK_SCHEMES = {"http", "https", "rtsp", "rtsps", "tcp", "rtmp", "srt"}
_DECODED_CACHE = 4
# Reopen delays (s) after a stream ends or will not open: quick at first, then once a second,
# so the picture is back within about a second of the box powering on.
_BACKOFF_MIN = 0.1
_BACKOFF_MAX = 1.0


class CaptureTimeout(StblabError, TimeoutError):
    """No new frame arrived in time (the capture itself is reachable: no signal from the box)."""


class _SeqClock:
    """Numbers live frames by the source's frame slots, from arrival times at a known frame rate.

    Network delay only ever makes frames late, so the earliest arrivals (the lower envelope of
    ``t - seq / fps`` over recent frames) mark where the slots are. A frame arriving well past the
    next free slot means the source produced frames in between that never reached us.
    """

    def __init__(self, fps: float | None) -> None:
        self.fps = fps if fps and fps > 0 else None
        self.last: int | None = None
        self._offsets: collections.deque[float] = collections.deque(maxlen=64)

    def next(self, t: float) -> tuple[int, int]:
        """(sequence number, frames missed before it) for a frame that arrived at ``t``."""
        if self.last is None:
            seq, missed = 0, 0
        elif self.fps is None or not self._offsets:
            seq, missed = self.last + 1, 0
        else:
            slots = (t - min(self._offsets)) * self.fps
            missed = max(0, math.floor(slots - (self.last + 1) + 0.25))
            seq = self.last + 1 + missed
        if self.fps is not None:
            self._offsets.append(t - seq / self.fps)
        self.last = seq
        return seq, missed


@dataclass
class _Grab:
    """A live frame waiting for its successor before it is numbered and published."""

    t: float
    jpeg: bytes
    image: np.ndarray | None
    width: int
    height: int
    clock: _SeqClock
    base_seq: int


class Capture:
    """A running HDMI capture (see the module docstring).

    ``fps_hint`` is the source's nominal frame rate (for drop counting on live streams);
    ``max_lag`` how far (seconds) a consumer may fall behind before frames are skipped for it.
    """

    def __init__(
        self,
        url: str | int,
        *,
        rig_name: str | None = None,
        ring_seconds: float = 10.0,
        no_signal_after: float = 1.0,
        fps_hint: float | None = None,
        open_timeout: float = 5.0,
        read_timeout: float = 2.0,
        lost_after: float = 5.0,
        max_lag: float = 0.25,
        jpeg_quality: int = 85,
    ) -> None:
        if no_signal_after <= 0 or lost_after < 0 or open_timeout <= 0 or read_timeout <= 0:
            raise TestError("capture timeouts must be positive")
        if fps_hint is not None and fps_hint <= 0:
            raise TestError(f"fps_hint must be > 0, got {fps_hint}")
        self.url = url
        self.rig_name = rig_name
        self.no_signal_after = float(no_signal_after)
        self.fps_hint = fps_hint
        self.open_timeout = float(open_timeout)
        self.read_timeout = float(read_timeout)
        self.lost_after = float(lost_after)
        self.max_lag = float(max_lag)
        self.jpeg_quality = int(jpeg_quality)
        self.ring = FrameRing(ring_seconds)
        self.kind = _kind_of(url)

        self.frames_received = 0
        self.dropped = 0  # frames the source produced that never reached us
        self.consumer_dropped = 0  # frames we had but a consumer was too slow to take
        self.opens = 0
        self.open_failures = 0
        self.ended = False  # a file source reached its end
        self.raw_jpeg = False  # the ring holds the source's own JPEGs
        self.time_source = "arrival"  # "pts": frame times from the stream's clock; "file": a file's PTS
        self.last_error = ""

        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cursor = -1  # next_frame's position
        self._last_frame_at = -math.inf  # monotonic time of the newest frame
        self._unreachable_since: float | None = None
        # False from the start and from the end of a read until the next attempt's outcome is known
        # (opened, or refused and probed): silence in between is neither the box nor the instrument
        self._settled = False
        self._decoded: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
        self._decoded_lock = threading.Lock()
        self._pending: list[_Grab] = []
        self._pend_cond = threading.Condition()
        self._pub_thread: threading.Thread | None = None
        self._closed = False
        self._multipart: bool | None = None  # an http(s) URL is multipart MJPEG (read here) or not (FFmpeg)

    # ------------------------------------------------------------------------------- lifecycle

    @classmethod
    def from_rig(cls, rig: Any, **overrides: Any) -> Capture:
        """The capture of a rig's ``video`` section (url, fps, no_signal_after, ring_seconds)."""
        cfg = rig.video
        if cfg is None:
            raise TestError(f"rig {rig.name} has no 'video' section in its rig file")
        kwargs: dict[str, Any] = {
            "rig_name": rig.name,
            "ring_seconds": cfg.ring_seconds,
            "no_signal_after": cfg.no_signal_after,
            "fps_hint": cfg.fps,
        }
        kwargs.update(overrides)
        return cls(cfg.url, **kwargs)

    @step("video")
    def start(self) -> Capture:
        """Start the grabber thread (idempotent). A file that does not exist is an InfraError."""
        if self.kind == "file" and not Path(str(self.url)).is_file():
            raise InfraError(f"capture file {self.url} does not exist", rig=self.rig_name, instrument="video")
        with contextlib.suppress(AttributeError):  # a closed stream while the box is off is expected, not news
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        with self._cond:
            self._closed = False
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name=f"capture-{self.rig_name or self.url}")
                self._thread.daemon = True
                self._thread.start()
            if self._pub_thread is None or not self._pub_thread.is_alive():
                self._pub_thread = threading.Thread(target=self._publisher, name="capture-publisher", daemon=True)
                self._pub_thread.start()
        return self

    def close(self) -> None:
        """Stop grabbing and release the source (the ring stays readable; start() resumes)."""
        self._closed = True
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        with self._pend_cond:
            self._pend_cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.open_timeout + self.read_timeout + 1)
        self._thread = None

    stop = close

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _ensure_started(self) -> None:
        if self._thread is None and not self._closed:
            self.start()

    # ------------------------------------------------------------------------------- grabber

    def _open(self) -> cv2.VideoCapture | None:
        src: str | int = self.url
        if self.kind == "device":
            cap = cv2.VideoCapture(int(src))
        elif self.kind == "device_path":
            cap = cv2.VideoCapture(str(src))
        else:
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                int(self.open_timeout * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                int(self.read_timeout * 1000),
            ]
            cap = cv2.VideoCapture(str(src), cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            return None
        return cap

    def _run(self) -> None:
        backoff = _BACKOFF_MIN
        while not self._stop.is_set():
            if self._multipart is not False and self.kind == "stream" and _maybe_multipart(str(self.url)):
                got = self._try_multipart()
                if got is not None:  # it was (or could not be reached as) a multipart MJPEG stream
                    if got:
                        backoff = _BACKOFF_MIN
                    else:
                        self._stop.wait(backoff)
                        backoff = min(backoff * 2, _BACKOFF_MAX)
                    continue
            cap = self._open()
            if cap is None:
                self._note_unreachable()
                self.open_failures += 1
                self._stop.wait(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            self.opens += 1
            self._unreachable_since = None
            self._settled = True
            before = self.frames_received
            try:
                self._read_stream(cap)
            except Exception as exc:  # noqa: BLE001 - a broken decoder must not kill the thread silently
                self.last_error = f"{type(exc).__name__}: {exc}"
            finally:
                self._settled = False
                cap.release()
            if self.kind == "file":
                self.ended = True
                with self._cond:
                    self._cond.notify_all()
                return
            if self.frames_received == before:  # opened but nothing came: back off as for a failure
                self._settled = True  # it answered moments ago: reachable, silent
                self._stop.wait(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
            else:
                backoff = _BACKOFF_MIN

    def _try_multipart(self) -> bool | None:
        """Read the URL as multipart MJPEG with its part headers: True when frames came, False when
        nothing did (unreachable, or it ended at once), None when it is another kind of stream."""
        reader = MjpegHttpReader(str(self.url), timeout=max(self.open_timeout, self.read_timeout))
        try:
            reader.open()
        except NotMultipart:
            self._multipart = False
            return None
        except OSError as exc:
            self.last_error = str(exc)
            self._note_unreachable()
            self.open_failures += 1
            return False
        self._multipart = True
        self.opens += 1
        self._unreachable_since = None
        self._settled = True
        before = self.frames_received
        try:
            self._read_parts(reader)
        except NotMultipart:
            self._multipart = False  # parts without lengths: FFmpeg's reader copes
        except Exception as exc:  # noqa: BLE001 - a broken stream must not kill the thread silently
            self.last_error = f"{type(exc).__name__}: {exc}"
        finally:
            self._settled = False
            reader.close()
        if self.frames_received == before:
            self._settled = True  # it answered moments ago: reachable, silent
        return self.frames_received > before

    def _read_parts(self, reader: MjpegHttpReader) -> None:
        """Publish each part's JPEG untouched; time from X-Timestamp, drops from the frame counter."""
        clock = _SeqClock(self.fps_hint)
        stamps = PtsClock(self.fps_hint)
        newest = self.ring.newest()
        base_seq = 0 if newest is None else newest.seq + 1
        seq = -1
        last_src: int | None = None

        def publish(st: Stamped) -> None:
            nonlocal seq, last_src
            jpeg, _, width, height, src = st.item
            missed = st.missed
            if src is not None:  # the source's own frame counter: exact drops
                missed = src - last_src - 1 if last_src is not None and src > last_src else 0
                last_src = src
            seq += 1 + missed
            self._publish(seq + base_seq, st.time, jpeg, None, width, height, missed, st.arrival)

        self.raw_jpeg = True
        while not self._stop.is_set():
            part = reader.read()
            now = time.monotonic()
            if part is None:
                break
            jpeg, headers = part
            size = _jpeg_size(jpeg)
            if size is None:
                continue
            stamp, src = part_stamp(headers)
            if stamp is None or stamps.usable is False:
                self.time_source = "arrival"
                self._hand_over(_Grab(now, jpeg, None, size[0], size[1], clock, base_seq))
                continue
            self.time_source = "x-timestamp"
            for st in stamps.feed(now, stamp, (jpeg, None, size[0], size[1], src)):
                publish(st)
        for st in stamps.flush():
            publish(st)
        self._flush()

    def _read_stream(self, cap: cv2.VideoCapture) -> None:
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little", signed=False)
        file_fps = cap.get(cv2.CAP_PROP_FPS) if self.kind == "file" else 0.0
        raw = fourcc.upper() in (b"MJPG", b"JPEG") and bool(cap.set(cv2.CAP_PROP_FORMAT, -1))
        clock = _SeqClock(self.fps_hint)
        base_seq = 0 if self.ring.newest() is None else self.ring.newest().seq + 1  # type: ignore[union-attr]
        stream_fps = cap.get(cv2.CAP_PROP_FPS) if self.kind == "stream" else 0.0
        pts_clock: PtsClock | None = None
        if self.kind == "stream" and not raw:  # decoded by FFmpeg: the stream's PTS is the frame's time
            pts_clock = PtsClock(self.fps_hint or (stream_fps if 0 < stream_fps < 1000 else None))
            self.time_source = "pts"
        wall0: float | None = None
        pts0 = 0.0
        last_file_seq = -1
        while not self._stop.is_set():
            ok, data = cap.read()
            now = time.monotonic()
            if not ok or data is None or data.size == 0:
                break
            image: np.ndarray | None = None
            if raw and data.ndim <= 2 and data.dtype == np.uint8:
                jpeg = data.tobytes()
                size = _jpeg_size(jpeg)
                if size is None:  # a packet that is no JPEG picture: nothing to show
                    continue
                width, height = size
                self.raw_jpeg = True
            else:
                image = data if data.ndim == 3 else cv2.cvtColor(data, cv2.COLOR_GRAY2BGR)
                height, width = image.shape[:2]
                okj, enc = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
                if not okj:
                    continue
                jpeg = enc.tobytes()
            if self.kind == "file":
                pts = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                if wall0 is None:
                    wall0, pts0 = now, pts
                # play a file in real time, as a capture card would see it
                self._stop.wait(max(0.0, wall0 + (pts - pts0) - time.monotonic()))
                t = pts
                seq = round(pts * file_fps) if file_fps > 0 else last_file_seq + 1
                seq = max(seq, last_file_seq + 1)
                missed = seq - last_file_seq - 1 if last_file_seq >= 0 else 0
                last_file_seq = seq
                self._publish(seq, t, jpeg, image, width, height, missed)
            elif pts_clock is not None and pts_clock.usable is not False:
                pts = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                for st in pts_clock.feed(now, pts, (jpeg, image, width, height)):
                    self._publish_stamped(st, base_seq, pts_clock)
            else:
                self.time_source = "arrival"
                self._hand_over(_Grab(now, jpeg, image, width, height, clock, base_seq))
        if pts_clock is not None:
            for st in pts_clock.flush():
                self._publish_stamped(st, base_seq, pts_clock)
        self._flush()

    def _publish_stamped(self, st: Stamped, base_seq: int, clock: PtsClock) -> None:
        jpeg, image, width, height = st.item
        if not clock.usable:
            self.time_source = "arrival"
        self._publish(st.seq + base_seq, st.time, jpeg, image, width, height, st.missed, st.arrival)

    # A live frame is published when the next one arrives (or 1.5 frame periods later): its
    # successor tells a frame that was merely late (jitter) from one that followed lost frames.
    # Frames arriving back to back (a burst after a stall: late, not lost) wait for the first
    # frame after the burst, which shows where the frame slots really are.

    def _hand_over(self, grab: _Grab) -> None:
        with self._pend_cond:
            fps = grab.clock.fps
            if fps is None:  # no rate known: nothing to count, publish at once
                self._publish_pending(None)
                self._pending = [grab]
                self._publish_pending(None)
                return
            if self._pending and grab.t - self._pending[-1].t >= 0.5 / fps:
                self._publish_pending(grab.t)
            self._pending.append(grab)
            if grab.t - self._pending[0].t > 3.0 / fps:  # a source faster than fps_hint: never hold long
                self._publish_pending(None)
            self._pend_cond.notify_all()

    def _flush(self) -> None:
        with self._pend_cond:
            self._publish_pending(None)

    def _publisher(self) -> None:
        with self._pend_cond:
            while not self._stop.is_set():
                if not self._pending or self._pending[-1].clock.fps is None:
                    self._pend_cond.wait(0.5)
                    continue
                last = self._pending[-1]
                left = last.t + 1.5 / last.clock.fps - time.monotonic()  # type: ignore[operator]
                if left > 0:
                    self._pend_cond.wait(left)
                    continue
                self._publish_pending(None)

    def _publish_pending(self, next_t: float | None) -> None:
        """Number and publish the waiting frames; ``next_t`` is the arrival of the frame after them.

        A frame's slot time is the earliest of its own arrival and each later arrival less the
        frame periods between them: a frame that only came late lines up with its successors.
        """
        pend, self._pending = self._pending, []
        arrivals = [g.t for g in pend] + ([next_t] if next_t is not None else [])
        for j, g in enumerate(pend):
            when = g.t
            if g.clock.fps:
                period = 1.0 / g.clock.fps
                when = min(arrivals[j + i] - i * period for i in range(len(arrivals) - j))
            seq, missed = g.clock.next(when)
            self._publish(seq + g.base_seq, g.t, g.jpeg, g.image, g.width, g.height, missed)

    def _publish(
        self,
        seq: int,
        t: float,
        jpeg: bytes,
        image: np.ndarray | None,
        width: int,
        height: int,
        missed: int,
        arrival: float | None = None,
    ) -> None:
        entry = self.ring.add(seq, t, jpeg, width, height, arrival)
        if image is not None:
            self._remember(entry.seq, image)
        with self._cond:
            self.frames_received += 1
            self.dropped += missed
            self._last_frame_at = time.monotonic()
            self._cond.notify_all()

    def _note_unreachable(self) -> None:
        reachable = self._probe()
        if reachable is False:
            if self._unreachable_since is None:
                self._unreachable_since = time.monotonic()
        else:
            self._unreachable_since = None
        with self._cond:
            self._settled = True
            self._cond.notify_all()

    def _probe(self) -> bool | None:
        """Can the instrument be reached? None when there is no way to tell (udp, a device)."""
        if self.kind in ("device", "device_path"):
            return False
        if self.kind == "file":
            return Path(str(self.url)).is_file()
        p = urlparse(str(self.url))
        if p.scheme not in _NETWORK_SCHEMES or not p.hostname:
            return None
        port = p.port or {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322}.get(p.scheme)
        if port is None:
            return None
        try:
            with socket.create_connection((p.hostname, port), timeout=1.0):
                return True
        except OSError as exc:
            self.last_error = f"{p.hostname}:{port}: {exc.strerror or exc}"
            return False

    # ------------------------------------------------------------------------------- state

    @property
    def signal(self) -> Signal:
        """``"signal"`` (frames arriving), ``"no-signal"`` (none for no_signal_after s) or ``"lost"``."""
        if self._lost():
            return LOST
        return SIGNAL if self.has_signal() else NO_SIGNAL

    def has_signal(self) -> bool:
        """True while frames arrive (black frames too); False when none came for no_signal_after s."""
        self._ensure_started()
        return time.monotonic() - self._last_frame_at <= self.no_signal_after

    def _lost(self) -> bool:
        since = self._unreachable_since
        return since is not None and time.monotonic() - since >= self.lost_after

    def raise_if_lost(self) -> None:
        """Raise InfraError when the capture instrument has been unreachable for ``lost_after`` s."""
        if self._lost():
            raise self._unreachable_error()

    def _unreachable_error(self) -> InfraError:
        why = f" ({self.last_error})" if self.last_error else ""
        since = self._unreachable_since
        for_ = f" for {time.monotonic() - since:.1f} s" if since is not None else ""
        return InfraError(f"capture {self.url} unreachable{for_}{why}", rig=self.rig_name, instrument="video")

    def wait_for_signal(self, timeout: float = 10.0) -> Frame:
        """Wait until frames arrive; the first new frame. CaptureTimeout / InfraError otherwise."""
        return self.next_frame(timeout)

    def wait_for_no_signal(self, timeout: float = 10.0) -> float:
        """Wait until no frame has come for no_signal_after seconds; returns the seconds waited.

        Silence from a capture instrument that cannot be reached is not "no signal" from the box:
        while it is unreachable this keeps waiting and raises InfraError once it is lost (or at the
        timeout). CaptureTimeout when frames still arrive at the timeout.
        """
        self._ensure_started()
        t0 = time.monotonic()
        with self._cond:
            while True:
                self.raise_if_lost()
                signal = self.has_signal()
                # not while the instrument's answer to the last attempt is still unknown
                if not signal and self._unreachable_since is None and self._settled:
                    return time.monotonic() - t0
                left = t0 + timeout - time.monotonic()
                if left <= 0:
                    if not signal:
                        raise self._unreachable_error()
                    raise CaptureTimeout(
                        f"capture {self.url}: frames still arriving after {timeout} s (expected no signal)"
                    )
                self._cond.wait(min(left, 0.05))

    def stats(self) -> dict[str, Any]:
        """Counters for reports: frames, drops, opens, ring size, signal."""
        return {
            "frames": self.frames_received,
            "dropped": self.dropped,
            "consumer_dropped": self.consumer_dropped,
            "opens": self.opens,
            "open_failures": self.open_failures,
            "ring_frames": len(self.ring),
            "ring_bytes": self.ring.nbytes,
            "raw_jpeg": self.raw_jpeg,
            "time_source": self.time_source,
            "signal": self.signal,
        }

    # ------------------------------------------------------------------------------- frames

    def _remember(self, seq: int, image: np.ndarray) -> None:
        with self._decoded_lock:
            self._decoded[seq] = image
            while len(self._decoded) > _DECODED_CACHE:
                self._decoded.popitem(last=False)

    def _frame(self, entry: RingEntry) -> Frame:
        with self._decoded_lock:
            image = self._decoded.get(entry.seq)
        if image is None:
            try:
                image = entry.decode()
            except ValueError as exc:
                raise InfraError(f"capture {self.url}: {exc}", rig=self.rig_name, instrument="video") from None
            self._remember(entry.seq, image)
        meta: dict[str, object] = {"rig": self.rig_name}
        if entry.arrival is not None:
            meta["arrival"] = entry.arrival
        return Frame(image=image, time=entry.time, seq=entry.seq, meta=meta)

    def latest(self, max_age: float | None = None) -> Frame | None:
        """The newest frame (None before the first one, or when older than ``max_age`` seconds)."""
        self._ensure_started()
        entry = self.ring.newest()
        if entry is None:
            return None
        if max_age is not None and time.monotonic() - self._last_frame_at > max_age:
            return None
        return self._frame(entry)

    def _take_after(self, cursor: int, active: bool, live: bool = True) -> tuple[RingEntry | None, int]:
        """The next entry after ``cursor`` for a consumer, skipping what is older than max_lag.

        Frames skipped count as consumer drops for an ``active`` consumer (an iterator in use);
        a caller coming back after a pause just gets a live frame.
        """
        newer = self.ring.after(cursor)
        skipped = 0
        if not live:  # replaying the ring from a point in the past: every frame, in order
            return (newer[0] if newer else None), 0
        if self.kind != "file":
            # frames already stale when the consumer comes asking are not "next" frames
            stale = time.monotonic() - self.max_lag
            fresh = [e for e in newer if _arrived(e) >= stale]
            if active:
                skipped += len(newer) - len(fresh)
            newer = fresh
        if not newer:
            return None, skipped
        # "behind" is judged on when frames were published: back-dated frames (a start-up burst) are fresh
        limit = _arrived(newer[-1]) - self.max_lag
        while len(newer) > 1 and _arrived(newer[0]) < limit:
            newer.pop(0)
            skipped += 1
        return newer[0], skipped

    def _wait_entry(self, cursor: int, deadline: float | None, *, active: bool, live: bool = True) -> RingEntry | None:
        """Block until an entry after ``cursor`` exists; None at the deadline or the end of a file."""
        self._ensure_started()
        with self._cond:
            while True:
                entry, skipped = self._take_after(cursor, active, live)
                if entry is not None:
                    self.consumer_dropped += skipped
                    return entry
                self.raise_if_lost()
                if self.ended or self._stop.is_set():
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(0.25 if left is None else min(left, 0.25))

    def next_frame(self, timeout: float = 5.0) -> Frame:
        """The next frame after the one this method last returned (waits up to ``timeout`` s).

        Raises :class:`CaptureTimeout` when none comes (no signal) and InfraError when the
        capture instrument is lost.
        """
        entry = self._wait_entry(self._cursor, time.monotonic() + timeout, active=False)
        if entry is None:
            self.raise_if_lost()
            state = "the file ended" if self.ended else f"signal: {self.signal}"
            raise CaptureTimeout(f"capture {self.url}: no new frame within {timeout} s ({state})")
        self._cursor = entry.seq
        return self._frame(entry)

    def frames(self, timeout: float | None = None, *, since: float | None = None) -> Iterator[Frame]:
        """Yield new frames as they arrive, for ``timeout`` seconds of wall time (None: until stopped).

        Starts after the newest frame at the time of the call, or with the frames captured at or
        after monotonic time ``since`` still in the ring. Each iterator has its own position;
        frames it was too slow for are skipped and counted in :attr:`consumer_dropped`.
        """
        self._ensure_started()
        deadline = None if timeout is None else time.monotonic() + timeout
        newest = self.ring.newest()
        cursor = newest.seq if newest is not None else -1
        replay_to = -1  # frames up to this seq are replayed from the ring without skipping
        if since is not None:
            kept = [e for e in self.ring.entries() if e.time >= since]
            if kept:
                cursor = kept[0].seq - 1
                replay_to = kept[-1].seq
        while deadline is None or time.monotonic() < deadline:
            entry = self._wait_entry(cursor, deadline, active=True, live=cursor >= replay_to)
            if entry is None:
                return
            cursor = entry.seq
            yield self._frame(entry)

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    # ------------------------------------------------------------------------------- evidence

    @step("video")
    def save_frame(self, path: str | os.PathLike[str], frame: Frame | None = None) -> Path:
        """Write ``frame`` (default: the newest) as an image; a .jpg of the newest keeps the source's bytes."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        if frame is None:
            entry = self.ring.newest()
            if entry is None:
                raise CaptureTimeout(f"capture {self.url}: no frame captured yet")
            if out.suffix.lower() in (".jpg", ".jpeg"):
                out.write_bytes(entry.jpeg)
                return out
            frame = self._frame(entry)
        if not cv2.imwrite(str(out), frame.image):
            raise TestError(f"cannot write image {out} (unknown image suffix?)")
        return out

    @step("video")
    def save_clip(self, path: str | os.PathLike[str], seconds: float | None = None) -> Path:
        """Write the last ``seconds`` of the ring (all of it when None) as a Motion JPEG clip.

        The suffix picks the container: .avi, .mkv, .mov or .mp4. Frames keep their capture times.
        """
        try:
            return self.ring.save_clip(path, seconds)
        except ValueError as exc:
            raise TestError(f"cannot write clip {path}: {exc}") from None

    def __repr__(self) -> str:
        return f"Capture({self.url!r}, rig={self.rig_name!r}, signal={self.signal if self._thread else 'stopped'!r})"


_NOT_MJPEG = (".ts", ".m2ts", ".m3u8", ".mpd", ".mp4", ".mkv", ".flv", ".webm")


def _maybe_multipart(url: str) -> bool:
    """Could this URL be multipart MJPEG? HTTP(S), and not a path that names another format: asking
    costs a connection, and single-client servers (``ffmpeg -listen 1``) serve only the first one."""
    p = urlparse(url)
    return p.scheme in ("http", "https") and not p.path.lower().endswith(_NOT_MJPEG)


def _arrived(entry: RingEntry) -> float:
    """When a ring entry became available to consumers (frames held at start-up count from then)."""
    return entry.published or (entry.time if entry.arrival is None else entry.arrival)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, or None when ``data`` is not a JPEG picture."""
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return None
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return (width, height) if width and height else None
        i += 2 + length
    return None


def _kind_of(url: str | int) -> str:
    if isinstance(url, int) or (isinstance(url, str) and url.strip().isdigit()):
        return "device"
    text = str(url)
    scheme = urlparse(text).scheme
    if len(scheme) > 1:
        return "stream"
    if text.startswith("/dev/"):
        return "device_path"
    return "file"
