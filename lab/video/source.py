"""Frame sources: where waiters and the offline scan get their frames.

Anything iterable that yields :class:`~lab.video.frame.Frame` is a source. The capture driver
(``lab.drivers.capture.Capture``) is one: waiters call its ``frames(timeout)`` and read its
``dropped`` count. :class:`FileSource` reads a recorded clip (anything PyAV or OpenCV opens) with
frame times taken from the stream's presentation timestamps, so a stream with missing frames
shows gaps in time and ``seq``.

Example::

    with FileSource("clip.ts") as source:
        for frame in source:
            ...
        print(source.dropped, "frames missing from the stream")
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lab.errors import InfraError
from lab.video.frame import Frame


class FileSource:
    """Frames of a video file, with times from PTS (seconds from the first frame) and ``seq`` from them.

    ``seq`` counts frame periods from the first frame, so a frame missing from the stream leaves a
    gap in ``seq`` and adds to ``dropped``. With PyAV each frame's ``meta`` tells ``key_frame``
    and ``corrupt`` (the decoder concealed damage in it). ``backend`` is ``"pyav"`` (default) or ``"opencv"``.
    A file that cannot be opened raises ``ValueError`` naming it.
    """

    def __init__(self, path: str | Path, *, backend: str = "pyav") -> None:
        self.path = Path(path)
        if backend not in {"pyav", "opencv"}:
            raise ValueError(f"backend must be 'pyav' or 'opencv', not {backend!r}")
        if not self.path.is_file():
            raise ValueError(f"cannot open video {self.path}: no such file")
        self.backend = backend
        self.dropped = 0
        self.decode_errors = 0
        self.fps: float | None = None
        self._container: Any = None

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the decoder if a read is in progress (iteration closes it when it ends)."""
        if self._container is not None:
            self._container.close()
            self._container = None

    def __iter__(self) -> Iterator[Frame]:
        return self._pyav() if self.backend == "pyav" else self._opencv()

    def frames(self, timeout: float | None = None) -> Iterator[Frame]:
        """Same as iterating; ``timeout`` is accepted for symmetry with live captures and ignored."""
        return iter(self)

    def _number(self, t: float, t0: float, last_seq: int) -> int:
        if not self.fps:
            return last_seq + 1
        seq = int(round((t - t0) * self.fps))
        return max(seq, last_seq + 1)

    def _pyav(self) -> Iterator[Frame]:
        import av

        try:
            container = av.open(str(self.path))
        except (av.FFmpegError, OSError) as exc:
            raise ValueError(f"cannot open video {self.path}: {exc}") from None
        self._container = container
        if not container.streams.video:
            container.close()
            raise ValueError(f"{self.path} has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else None
        t0: float | None = None
        last_seq = -1
        last_time: float | None = None
        try:
            packets = container.demux(stream)
            for packet in packets:
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
                    seq = self._number(t, t0, last_seq)
                    self.dropped += max(0, seq - last_seq - 1) if last_seq >= 0 else 0
                    last_seq, last_time = seq, t
                    image = vf.to_ndarray(format="bgr24")
                    meta: dict[str, object] = {"pts": vf.pts, "stream_time": t, "key_frame": bool(vf.key_frame)}
                    meta["corrupt"] = bool(getattr(vf, "is_corrupt", False))
                    yield Frame(image=image, time=t - t0, seq=seq, meta=meta)
        finally:
            self.close()

    def _opencv(self) -> Iterator[Frame]:
        import cv2

        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise ValueError(f"cannot open video {self.path} with OpenCV")
        self.fps = float(cap.get(cv2.CAP_PROP_FPS)) or None
        last_seq = -1
        t0: float | None = None
        try:
            while True:
                ok, image = cap.read()
                if not ok:
                    break
                t = float(cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
                if t0 is None:
                    t0 = t
                seq = self._number(t, t0, last_seq)
                self.dropped += max(0, seq - last_seq - 1) if last_seq >= 0 else 0
                last_seq = seq
                yield Frame(image=np.ascontiguousarray(image), time=t - t0, seq=seq)
        finally:
            cap.release()


class ListSource:
    """A list (or any iterable) of frames as a source.

    ``dropped`` stays 0 (the list delivers every frame it holds); waiters count gaps in ``seq``
    themselves, in their ``details['dropped']``.
    """

    def __init__(self, frames: Iterable[Frame]) -> None:
        self._frames = frames
        self.dropped = 0

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def frames(self, timeout: float | None = None) -> Iterator[Frame]:
        return iter(self._frames)


def iterate(source: Any, timeout: float | None, since: float | None = None) -> Iterator[Frame]:
    """Frames from any source: an object with ``frames(timeout)``, a path, or an iterable of Frames.

    ``since`` is passed on to sources whose ``frames`` take it (the capture driver replays the
    frames it captured since then from its ring); callers still skip older frames themselves.
    """
    if isinstance(source, str | Path):
        return iter(FileSource(source))
    if hasattr(source, "frames") and callable(source.frames):
        if since is not None:
            try:
                return iter(source.frames(timeout, since=since))
            except TypeError:
                pass  # a source without ``since``: the caller filters
        return iter(source.frames(timeout))
    if isinstance(source, Iterable):
        return iter(source)
    raise TypeError(f"not a frame source: {type(source).__name__} (give an iterable of Frame or a Capture)")


def check_frame(item: object, rig: str | None = None) -> Frame:
    """Make sure a source yielded a Frame (a capture yielding something else is a lab problem)."""
    if isinstance(item, Frame):
        return item
    raise InfraError(f"video source yielded {type(item).__name__}, not a Frame", rig=rig, instrument="video")
