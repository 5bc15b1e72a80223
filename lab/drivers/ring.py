"""A ring of the last N seconds of captured frames, kept compressed, for failure clips.

Frames are held as JPEG bytes (the capture's original JPEGs for an MJPEG source, re-encoded
otherwise), so 10 s of 720p25 costs a few tens of MB instead of 10 s of raw arrays (~690 MB).
A clip is written without re-encoding: the JPEGs are muxed as they are (Motion JPEG in AVI,
Matroska, QuickTime or MP4), with each frame's own capture time, so drops and stalls show in it.

Example::

    ring = FrameRing(seconds=10)
    ring.add(seq=1, time=12.00, jpeg=jpeg_bytes, width=1280, height=720)
    ring.save_clip("failure.avi", seconds=5)
"""

from __future__ import annotations

import collections
import os
import threading
import time as _time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

__all__ = ["FrameRing", "RingEntry", "CLIP_SUFFIXES"]

#: Containers a clip can be written to (all hold Motion JPEG without re-encoding).
CLIP_SUFFIXES = {".avi", ".mkv", ".mov", ".mp4"}


@dataclass(frozen=True, slots=True)
class RingEntry:
    """One compressed frame: sequence number, capture time (s), JPEG bytes and picture size.

    ``arrival`` is when it reached the capture (monotonic s) when that differs from ``time``
    (frame time from the stream's own clock); None when ``time`` is the arrival time.
    """

    seq: int
    time: float
    jpeg: bytes
    width: int
    height: int
    arrival: float | None = None
    published: float = 0.0  # when it entered the ring (monotonic s): how long consumers have had it

    def decode(self) -> np.ndarray:
        """The BGR picture (raises ValueError when the JPEG is corrupt)."""
        img = cv2.imdecode(np.frombuffer(self.jpeg, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"frame {self.seq}: JPEG does not decode")
        return img


class FrameRing:
    """Thread-safe ring keeping the frames of the last ``seconds`` of capture time."""

    def __init__(self, seconds: float = 10.0) -> None:
        if seconds < 0:
            raise ValueError(f"ring seconds must be >= 0, got {seconds}")
        self.seconds = float(seconds)
        self._entries: collections.deque[RingEntry] = collections.deque()
        self._bytes = 0
        self._lock = threading.Lock()

    def add(
        self, seq: int, time: float, jpeg: bytes, width: int, height: int, arrival: float | None = None
    ) -> RingEntry:
        """Append a frame and forget those older than ``seconds`` before it."""
        entry = RingEntry(seq, time, bytes(jpeg), width, height, arrival, _time.monotonic())
        with self._lock:
            if self._entries and time < self._entries[-1].time:
                # the clock went back (a new stream after a reopen with PTS time): start over
                self._entries.clear()
                self._bytes = 0
            self._entries.append(entry)
            self._bytes += len(entry.jpeg)
            limit = time - self.seconds
            while self._entries and self._entries[0].time < limit:
                self._bytes -= len(self._entries.popleft().jpeg)
        return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        """Bytes of JPEG data held (the ring's memory, give or take per-entry overhead)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self, seconds: float | None = None) -> list[RingEntry]:
        """The frames of the last ``seconds`` (all when None), oldest first."""
        with self._lock:
            items = list(self._entries)
        if seconds is None or not items:
            return items
        limit = items[-1].time - seconds
        return [e for e in items if e.time >= limit]

    def __iter__(self) -> Iterator[RingEntry]:
        return iter(self.entries())

    def newest(self) -> RingEntry | None:
        with self._lock:
            return self._entries[-1] if self._entries else None

    def after(self, seq: int) -> list[RingEntry]:
        """Frames with a sequence number above ``seq``, oldest first."""
        with self._lock:
            if not self._entries or self._entries[-1].seq <= seq:
                return []
            out: list[RingEntry] = []
            for e in reversed(self._entries):
                if e.seq <= seq:
                    break
                out.append(e)
        out.reverse()
        return out

    def save_clip(self, path: str | os.PathLike[str], seconds: float | None = None) -> Path:
        """Write the last ``seconds`` as a Motion JPEG clip (AVI, MKV, MOV or MP4 by suffix).

        Frame times in the clip are the capture times, so it plays at the pace it was captured.
        Raises ValueError when the ring is empty or the suffix is not a known container.
        """
        import av

        out = Path(path)
        if out.suffix.lower() not in CLIP_SUFFIXES:
            raise ValueError(f"{out}: clip must end in one of {', '.join(sorted(CLIP_SUFFIXES))}")
        items = self.entries(seconds)
        if not items:
            raise ValueError("no frames in the ring: nothing to write")
        width, height = items[-1].width, items[-1].height
        items = [e for e in items if (e.width, e.height) == (width, height)]
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part" + out.suffix)
        t0 = items[0].time
        rate = _rate(items)
        # AVI is constant-rate: tick at the frame rate (a dropped frame leaves an empty tick);
        # the other containers keep each frame's own time to the millisecond.
        ticks = rate if out.suffix.lower() == ".avi" else 1000
        try:
            with av.open(str(tmp), "w") as container:
                stream = container.add_stream("mjpeg", rate=rate)
                stream.width, stream.height = width, height
                stream.pix_fmt = "yuvj420p"
                stream.time_base = Fraction(1, ticks)
                last_pts = -1
                for e in items:
                    pts = max(last_pts + 1, round((e.time - t0) * ticks))
                    packet = av.Packet(e.jpeg)
                    packet.pts = packet.dts = pts
                    packet.time_base = stream.time_base
                    packet.stream = stream
                    container.mux(packet)
                    last_pts = pts
            os.replace(tmp, out)
        except BaseException:
            tmp.unlink(missing_ok=True)  # never leave a half-written clip behind
            raise
        return out


def _rate(items: list[RingEntry]) -> int:
    if len(items) < 2:
        return 25
    span = items[-1].time - items[0].time
    return max(1, min(240, round((len(items) - 1) / span))) if span > 0 else 25
