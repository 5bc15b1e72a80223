"""A captured frame: the picture plus the time and sequence number it was captured at.

Every frame that reaches a check or a waiter carries its capture timestamp (seconds, from the
capture's clock or the stream's presentation time for offline files) and a sequence number that
increases by one per frame the source produced; a gap in ``seq`` is a dropped frame.

Example::

    frame = Frame(image=np.zeros((720, 1280, 3), np.uint8), time=12.04, seq=301)
    frame = load_frame("screenshot.png")          # time 0.0, seq 0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np


@dataclass(frozen=True, slots=True, repr=False)
class Frame:
    """A BGR ``uint8`` image (H x W x 3) with its capture time (s) and sequence number.

    Checks share derived pictures (grey, pyramid levels, small copies) through :meth:`derived`,
    so running several checks on one frame converts it to grey once.
    """

    image: np.ndarray
    time: float
    seq: int
    meta: dict[str, object] = field(default_factory=dict, compare=False)
    _cache: dict[Any, np.ndarray] = field(default_factory=dict, init=False, compare=False, repr=False)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def __repr__(self) -> str:
        return f"Frame({self.width}x{self.height}, time={self.time:.3f}, seq={self.seq})"

    def derived(self, key: Any, make: Callable[[], np.ndarray]) -> np.ndarray:
        """Return the cached picture ``key`` derived from this frame, computing it once with ``make``."""
        value = self._cache.get(key)
        if value is None:
            value = make()
            self._cache[key] = value
        return value

    def grey(self) -> np.ndarray:
        """The frame in 8-bit luma (BT.601 weights, as OpenCV computes it), computed once."""
        return self.derived("grey", lambda: cv2.cvtColor(self.image, cv2.COLOR_BGR2GRAY))

    def grey_level(self, level: int) -> np.ndarray:
        """The grey picture halved ``level`` times (2x2 averages, :func:`half`; level 0 = full size)."""
        if level <= 0:
            return self.grey()
        return self.derived(("grey", level), lambda: half(self.grey_level(level - 1)))


def half(image: np.ndarray) -> np.ndarray:
    """``image`` at half size, each pixel the mean of a 2x2 block (odd sizes round up, like ``cv2.pyrDown``)."""
    h, w = image.shape[:2]
    return cv2.resize(image, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)


def as_frame(frame: Frame | np.ndarray, *, time: float = 0.0, seq: int = 0) -> Frame:
    """Wrap a bare BGR (or grey) array as a :class:`Frame`; a Frame is returned unchanged."""
    if isinstance(frame, Frame):
        return frame
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"expected a Frame or a numpy image, got {type(frame).__name__}")
    image = frame
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an 8-bit BGR image, got dtype {image.dtype} shape {image.shape}")
    return Frame(image=image, time=time, seq=seq)


def load_frame(path: str | Path, *, time: float = 0.0, seq: int = 0) -> Frame:
    """Read an image file (PNG, JPEG, ...) as a Frame; a missing or unreadable file raises ``ValueError``."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {path}: missing or not an image")
    return Frame(image=image, time=time, seq=seq, meta={"source": str(path)})
