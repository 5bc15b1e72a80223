"""The capture's grabber thread: open the source, read frames, reopen with backoff.

Frames come from ``cv2.VideoCapture`` (devices, files, FFmpeg streams with their PTS) or, for
multipart MJPEG over HTTP, part by part with their ``X-Timestamp`` (:mod:`lab.drivers.mjpeg_http`).
Each frame is handed to the numbering side (:mod:`lab.drivers.capture_numbering`).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import cv2
import numpy as np

from lab.drivers.capture_numbering import NumberingMixin, _Grab, _SeqClock
from lab.drivers.mjpeg_http import MjpegHttpReader, NotMultipart, part_stamp
from lab.drivers.stream_clock import PtsClock, Stamped

_NETWORK_SCHEMES = {"http", "https", "rtsp", "rtsps", "tcp", "rtmp", "srt"}
# Reopen delays (s) after a stream ends or will not open: quick at first, then once a second,
# so the picture is back within about a second of the box powering on.
_BACKOFF_MIN = 0.1
_BACKOFF_MAX = 1.0


class GrabberMixin(NumberingMixin):
    """The capture's reading side (see the module docstring)."""

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


_NOT_MJPEG = (".ts", ".m2ts", ".m3u8", ".mpd", ".mp4", ".mkv", ".flv", ".webm")


def _maybe_multipart(url: str) -> bool:
    """Could this URL be multipart MJPEG? HTTP(S), and not a path that names another format: asking
    costs a connection, and single-client servers (``ffmpeg -listen 1``) serve only the first one."""
    p = urlparse(url)
    return p.scheme in ("http", "https") and not p.path.lower().endswith(_NOT_MJPEG)


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
