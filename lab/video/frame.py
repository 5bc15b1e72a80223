"""A captured frame: the picture plus the time and sequence number it was captured at.

Every frame that reaches a check or a waiter carries its capture timestamp (seconds, from the
capture's clock or the stream's presentation time for offline files) and a sequence number that
increases by one per frame the source produced; a gap in ``seq`` is a dropped frame.

Example::

    frame = Frame(image=np.zeros((720, 1280, 3), np.uint8), time=12.04, seq=301)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """A BGR ``uint8`` image (H x W x 3) with its capture time (s) and sequence number."""

    image: np.ndarray
    time: float
    seq: int
    meta: dict[str, object] = field(default_factory=dict, compare=False)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])
