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
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lab.drivers.capture_base import LOST, NO_SIGNAL, SIGNAL, CaptureTimeout, Signal
from lab.drivers.capture_grabber import GrabberMixin, _kind_of
from lab.drivers.capture_numbering import _Grab as _Grab  # the numbering's, importable here as before
from lab.drivers.capture_numbering import _SeqClock as _SeqClock
from lab.drivers.ring import FrameRing, RingEntry
from lab.errors import InfraError, TestError
from lab.steps import step
from lab.video.frame import Frame

__all__ = ["Capture", "CaptureTimeout", "Signal", "SIGNAL", "NO_SIGNAL", "LOST"]

_DECODED_CACHE = 4


class Capture(GrabberMixin):
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


def _arrived(entry: RingEntry) -> float:
    """When a ring entry became available to consumers (frames held at start-up count from then)."""
    return entry.published or (entry.time if entry.arrival is None else entry.arrival)
