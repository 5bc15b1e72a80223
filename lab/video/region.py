"""Rectangles and masks on the screen: where a check looks.

A :class:`Region` is an axis-aligned rectangle in pixels (``x``, ``y``, ``width``, ``height``).
A :class:`Mask` is any set of pixels, built by arithmetic on regions and PNG files and resolved
to a boolean array only when a check knows the frame size.

Example::

    banner = Region(0, 560, 1280, 160)
    clock = Region(1100, 20, 160, 40)
    live_area = ~Mask(banner) - clock              # everything except the banner and the clock
    logo = Mask.from_png("logo.png")               # opaque pixels of a transparent PNG
    both = Mask(banner) | clock                    # union
    mid = Region(0, 0, 1280, 720) & Region(320, 180, 1280, 720)   # intersection: a Region
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Union

import cv2
import numpy as np

_BIG = 1 << 30


@dataclass(frozen=True, slots=True)
class Region:
    """A rectangle: left ``x``, top ``y``, ``width``, ``height`` in pixels. ``Region.ALL`` is the whole frame."""

    x: int
    y: int
    width: int
    height: int
    ALL: ClassVar[Region]  # the whole frame, whatever its size

    def __post_init__(self) -> None:
        if self.width < 0 or self.height < 0:
            raise ValueError(f"region size must not be negative: {self.width}x{self.height}")

    @classmethod
    def from_extents(cls, x: int, y: int, right: int, bottom: int) -> Region:
        """Build a region from its left, top, right (exclusive) and bottom (exclusive) edges."""
        return cls(int(x), int(y), max(0, int(right) - int(x)), max(0, int(bottom) - int(y)))

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.width / 2, self.y + self.height / 2)

    def intersect(self, other: Region) -> Region | None:
        """The overlap of two regions, or ``None`` when they do not overlap."""
        x, y = max(self.x, other.x), max(self.y, other.y)
        right, bottom = min(self.right, other.right), min(self.bottom, other.bottom)
        if right <= x or bottom <= y:
            return None
        return Region.from_extents(x, y, right, bottom)

    def bounding_box(self, other: Region) -> Region:
        """The smallest region holding both."""
        return Region.from_extents(
            min(self.x, other.x), min(self.y, other.y), max(self.right, other.right), max(self.bottom, other.bottom)
        )

    def clip(self, width: int, height: int) -> Region | None:
        """This region cut to a ``width`` x ``height`` frame; ``None`` when it lies outside."""
        return self.intersect(Region(0, 0, width, height))

    def contains(self, other: Region) -> bool:
        return self.x <= other.x and self.y <= other.y and self.right >= other.right and self.bottom >= other.bottom

    def translate(self, dx: int, dy: int) -> Region:
        return Region(self.x + dx, self.y + dy, self.width, self.height)

    def grow(self, pixels: int) -> Region:
        """The region widened by ``pixels`` on every side (shrunk when negative)."""
        return Region.from_extents(self.x - pixels, self.y - pixels, self.right + pixels, self.bottom + pixels)

    def slices(self) -> tuple[slice, slice]:
        """Numpy ``(rows, columns)`` slices: ``image[region.slices()]``."""
        return slice(self.y, self.bottom), slice(self.x, self.right)

    def __and__(self, other: Region) -> Region | None:
        return self.intersect(other)

    def __or__(self, other: MaskLike) -> Mask:
        return Mask(self) | other

    def __sub__(self, other: MaskLike) -> Mask:
        return Mask(self) - other

    def __invert__(self) -> Mask:
        return ~Mask(self)

    def to_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}


Region.ALL = Region(-_BIG, -_BIG, 2 * _BIG, 2 * _BIG)

MaskLike = Union["Mask", Region, np.ndarray, str, Path]


class Mask:
    """A set of pixels, resolved against a frame size by :meth:`to_array`.

    Build one from a :class:`Region`, a boolean/uint8 array (non-zero = in the mask) or a PNG
    (alpha channel when there is one, else non-zero grey pixels), and combine with ``|`` (union),
    ``&`` (intersection), ``-`` (subtraction) and ``~`` (inversion).
    """

    __slots__ = ("_resolve", "_text")
    _resolve: Callable[[tuple[int, int]], np.ndarray]  # the mask for a frame shape
    _text: str  # how repr() shows it

    def __init__(self, source: MaskLike) -> None:
        if isinstance(source, Mask):
            self._resolve, self._text = source._resolve, source._text
        elif isinstance(source, Region):
            region = source

            def resolve(shape: tuple[int, int]) -> np.ndarray:
                out = np.zeros(shape, bool)
                clipped = region.clip(shape[1], shape[0])
                if clipped is not None:
                    out[clipped.slices()] = True
                return out

            self._resolve, self._text = resolve, repr(region) if region != Region.ALL else "Region.ALL"
        elif isinstance(source, np.ndarray):
            array = _array_to_bool(source)
            self._resolve, self._text = _fixed(array, "array"), f"array{array.shape}"
        elif isinstance(source, str | Path):
            array = _png_to_bool(Path(source))
            self._resolve, self._text = _fixed(array, str(source)), f"png({source})"
        else:
            raise TypeError(f"cannot make a Mask from {type(source).__name__}")

    @classmethod
    def from_png(cls, path: str | Path) -> Mask:
        """The opaque pixels of a PNG (alpha > 0), or its non-zero pixels when it has no alpha."""
        return cls(Path(path))

    @classmethod
    def _combine(cls, fn: Callable[[tuple[int, int]], np.ndarray], text: str) -> Mask:
        mask = cls.__new__(cls)
        mask._resolve, mask._text = fn, text
        return mask

    def to_array(self, shape: tuple[int, ...]) -> np.ndarray:
        """The mask as a boolean array of ``shape[:2]`` (height, width)."""
        return self._resolve((int(shape[0]), int(shape[1])))

    def bounding_box(self, shape: tuple[int, ...]) -> Region | None:
        """The smallest region holding every pixel of the mask in a frame of ``shape``; ``None`` if empty."""
        ys, xs = np.nonzero(self.to_array(shape))
        if len(xs) == 0:
            return None
        return Region.from_extents(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)

    def __or__(self, other: MaskLike) -> Mask:
        a, b = self, Mask(other)
        return Mask._combine(lambda s: a.to_array(s) | b.to_array(s), f"({a._text} | {b._text})")

    __ror__ = __or__

    def __and__(self, other: MaskLike) -> Mask:
        a, b = self, Mask(other)
        return Mask._combine(lambda s: a.to_array(s) & b.to_array(s), f"({a._text} & {b._text})")

    __rand__ = __and__

    def __sub__(self, other: MaskLike) -> Mask:
        a, b = self, Mask(other)
        return Mask._combine(lambda s: a.to_array(s) & ~b.to_array(s), f"({a._text} - {b._text})")

    def __rsub__(self, other: MaskLike) -> Mask:
        return Mask(other) - self

    def __invert__(self) -> Mask:
        a = self
        return Mask._combine(lambda s: ~a.to_array(s), f"~{a._text}")

    def __repr__(self) -> str:
        return f"Mask({self._text})"


def _fixed(array: np.ndarray, name: str) -> Callable[[tuple[int, int]], np.ndarray]:
    def resolve(shape: tuple[int, int]) -> np.ndarray:
        if array.shape != shape:
            raise ValueError(f"mask {name} is {array.shape[1]}x{array.shape[0]} but the frame is {shape[1]}x{shape[0]}")
        return array

    return resolve


def _array_to_bool(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 4:
        return array[:, :, 3] > 0
    if array.ndim == 3:
        return np.any(array != 0, axis=2)
    if array.ndim == 2:
        return array != 0
    raise ValueError(f"a mask array must be 2-D or 3-D, got shape {array.shape}")


def _png_to_bool(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"cannot read mask image {path}: missing or not an image")
    return _array_to_bool(image)


def resolve_mask(mask: MaskLike | None, region: Region, shape: tuple[int, ...]) -> tuple[Region, np.ndarray | None]:
    """Turn a check's ``region``/``mask`` arguments into the region to crop and a mask for the crop.

    Returns the region clipped to the frame (its mask's bounding box when a mask is given) and a
    uint8 mask (255 = look, 0 = ignore) of the crop's size, or ``None`` when every pixel counts.
    Raises ``ValueError`` when nothing of the frame is left to look at.
    """
    height, width = int(shape[0]), int(shape[1])
    clipped = region.clip(width, height)
    if clipped is None:
        raise ValueError(f"region {region} lies outside the {width}x{height} frame")
    if mask is None:
        return clipped, None
    full = Mask(mask).to_array((height, width)) & Mask(clipped).to_array((height, width))
    box = Mask(full).bounding_box((height, width))
    if box is None:
        raise ValueError(f"mask {mask!r} leaves nothing of the {width}x{height} frame to look at")
    crop = full[box.slices()]
    if crop.all():
        return box, None
    return box, crop.astype(np.uint8) * 255
