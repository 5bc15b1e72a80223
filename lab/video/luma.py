"""The fast path of the offline scan: decoded luma planes, straight from PyAV, with their times.

The black, freeze and motion checks of a scan need brightness only, so a clip is read as the
decoder's own Y plane (a zero-copy numpy view, no BGR conversion, no scaling); colour is made
only for the frames that need it (a no-signal candidate). Frame times come from PTS, ``seq``
counts frame periods (a gap is a frame missing from the stream), as in
:class:`~lab.video.source.FileSource`.

``full_range`` tells how to read the levels: limited range (16-235, broadcast video) unless the
stream says JPEG/full range (MJPEG, ``yuvj*`` formats).

Example::

    reader = LumaReader("clip.ts")
    for pic in reader:
        print(pic.time, pic.y.mean(), pic.full_range)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

_YUV_PREFIXES = ("yuv", "yuvj", "nv12", "nv21", "gray")


@dataclass(slots=True)
class LumaPicture:
    """One decoded picture's luma plane (H x W uint8, maybe a view) with its time and numbering."""

    y: np.ndarray
    time: float
    seq: int
    full_range: bool
    key_frame: bool = False
    corrupt: bool = False
    stream_time: float = 0.0
    source: Any = field(default=None, repr=False)  # the decoder's frame, for colour on demand

    def bgr(self) -> np.ndarray:
        """The picture in colour (converted on demand; only a few frames ever need it)."""
        if self.source is not None and hasattr(self.source, "to_ndarray"):
            return self.source.to_ndarray(format="bgr24")
        if isinstance(self.source, np.ndarray):
            return self.source
        return cv2.cvtColor(self.y, cv2.COLOR_GRAY2BGR)


class LumaReader:
    """Luma pictures of a clip (PyAV; ``backend="opencv"`` converts OpenCV's BGR to grey)."""

    def __init__(self, path: str | Path, *, backend: str = "pyav", threads: int = 1) -> None:
        self.path = Path(path)
        if backend not in {"pyav", "opencv"}:
            raise ValueError(f"backend must be 'pyav' or 'opencv', not {backend!r}")
        if not self.path.is_file():
            raise ValueError(f"cannot open video {self.path}: no such file")
        self.backend = backend
        self.threads = max(0, int(threads))
        self.dropped = 0
        self.decode_errors = 0
        self.fps: float | None = None

    def __iter__(self) -> Iterator[LumaPicture]:
        return self._pyav() if self.backend == "pyav" else self._opencv()

    def _seq(self, t: float, t0: float, last: int) -> int:
        seq = int(round((t - t0) * self.fps)) if self.fps else last + 1
        seq = max(seq, last + 1)
        if last >= 0:
            self.dropped += seq - last - 1
        return seq

    def _pyav(self) -> Iterator[LumaPicture]:
        import av

        try:
            container = av.open(str(self.path))
        except (av.FFmpegError, OSError) as exc:
            raise ValueError(f"cannot open video {self.path}: {exc}") from None
        try:
            if not container.streams.video:
                raise ValueError(f"{self.path} has no video stream")
            stream = container.streams.video[0]
            if self.threads != 1:  # threads cost CPU time; a single decoder thread is the cheapest
                stream.thread_type = "AUTO"
                stream.thread_count = self.threads
            else:
                stream.thread_count = 1
            rate = stream.average_rate or stream.guessed_rate
            self.fps = float(rate) if rate else None
            t0: float | None = None
            last_seq, last_time = -1, None
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.FFmpegError:
                    self.decode_errors += 1
                    continue
                for vf in decoded:
                    t = vf.time
                    if t is None:
                        t = (last_time + 1 / self.fps) if last_time is not None and self.fps else 0.0
                    if last_time is not None and t <= last_time:
                        continue  # duplicate or out-of-order timestamp after damage
                    if t0 is None:
                        t0 = t
                    last_seq, last_time = self._seq(t, t0, last_seq), t
                    y, full = _plane(vf)
                    yield LumaPicture(
                        y,
                        t - t0,
                        last_seq,
                        full,
                        bool(vf.key_frame),
                        bool(getattr(vf, "is_corrupt", False)),
                        t,
                        vf,
                    )
        finally:
            container.close()

    def _opencv(self) -> Iterator[LumaPicture]:
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise ValueError(f"cannot open video {self.path} with OpenCV")
        self.fps = float(cap.get(cv2.CAP_PROP_FPS)) or None
        t0: float | None = None
        last_seq = -1
        try:
            while True:
                ok, image = cap.read()
                if not ok:
                    break
                t = float(cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
                if t0 is None:
                    t0 = t
                last_seq = self._seq(t, t0, last_seq)
                grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
                yield LumaPicture(grey, t - t0, last_seq, True, False, False, t, image)
        finally:
            cap.release()


def _plane(vf: Any) -> tuple[np.ndarray, bool]:
    """The Y plane of a decoded frame as a numpy view, and whether it is full range."""
    name = vf.format.name
    deep = name.endswith(("le", "be"))  # 9- to 16-bit planes: let swscale bring them to 8 bits
    if name.startswith(_YUV_PREFIXES) and not deep:
        plane = vf.planes[0]
        width, height = vf.width, vf.height
        row = plane.line_size
        y = np.frombuffer(plane, np.uint8, count=row * height).reshape(height, row)[:, :width]
        full = name.startswith("yuvj") or name == "gray" or int(vf.color_range or 0) == 2
        return y, full
    grey = vf.to_ndarray(format="gray")  # RGB, palette or >8-bit formats: let swscale convert
    return grey, True
