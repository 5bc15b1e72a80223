"""Motion: did the picture change beyond noise between two frames, and where?

The difference is taken in colour (the largest per-channel difference of each pixel), so a change
of hue at equal brightness counts. Pixels that differ by no more than ``noise_threshold`` (0-255)
are noise; a changed area counts when its box is at least ``min_size`` (width, height in frame
pixels) or it covers as many pixels as such a box (the thin leading and trailing edges of a
slowly moving object count; JPEG shimmer and single pixels do not). For speed the comparison runs on a
nearest-neighbour reduction of the frame (``scale``; 1080p is compared at 480x270 by default).

Example::

    result = detect_motion(frame, previous, mask=~Mask(clock))
    detector = MotionDetector(consecutive=(10, 20))     # motion in 10 of the last 20 frames
    for frame in capture.frames(timeout=10):
        if detector.update(frame): ...
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

from lab.video.frame import Frame, as_frame
from lab.video.region import MaskLike, Region, resolve_mask
from lab.video.result import CheckResult

DEFAULT_NOISE_THRESHOLD = 25
DEFAULT_MIN_SIZE = (8, 8)


class MotionResult(CheckResult):
    """Truthy when there was motion; ``region`` is the box around what moved, ``score`` the changed fraction."""

    @property
    def symptom(self) -> str:
        return "motion" if self.ok else "no-motion"


def auto_scale(width: int) -> int:
    """The reduction factor motion and freeze use for a frame ``width`` pixels wide (1 up to 640 px)."""
    return max(1, width // 480) if width > 640 else 1


def small_image(frame: Frame, scale: int) -> np.ndarray:
    """The frame reduced ``scale`` times by nearest-neighbour sampling (cached on the frame)."""
    if scale <= 1:
        return frame.image
    size = (-(-frame.width // scale), -(-frame.height // scale))
    return frame.derived(("small", scale), lambda: cv2.resize(frame.image, size, interpolation=cv2.INTER_NEAREST))


class _Comparer:
    """Compares two frames' work-scale pictures inside a region and mask; shared by motion and freeze."""

    def __init__(
        self,
        region: Region,
        mask: MaskLike | None,
        noise_threshold: int,
        min_size: tuple[int, int],
        scale: int | None,
    ) -> None:
        self.region, self.mask = region, mask
        self.noise_threshold = int(noise_threshold)
        self.min_size = (int(min_size[0]), int(min_size[1]))
        self.scale = scale
        self._shape: tuple[int, ...] | None = None

    def _setup(self, shape: tuple[int, ...]) -> None:
        self._shape = shape
        scale = self.scale or auto_scale(int(shape[1]))
        self._k = scale
        box, crop_mask = resolve_mask(self.mask, self.region, shape)
        self.box = box
        # the work-scale crop covering ``box``
        self._x0, self._y0 = -(-box.x // scale), -(-box.y // scale)
        self._x1, self._y1 = -(-box.right // scale), -(-box.bottom // scale)
        self._mask_small = None
        if crop_mask is not None:
            full = np.zeros(shape[:2], np.uint8)
            full[box.slices()] = crop_mask
            self._mask_small = np.ascontiguousarray(full[::scale, ::scale][self._y0 : self._y1, self._x0 : self._x1])
        self._min_w = max(1, -(-self.min_size[0] // scale))
        self._min_h = max(1, -(-self.min_size[1] // scale))

    def crop(self, frame: Frame) -> np.ndarray:
        if self._shape != frame.image.shape:
            self._setup(frame.image.shape)
        return small_image(frame, self._k)[self._y0 : self._y1, self._x0 : self._x1]

    def compare(self, a: np.ndarray, b: np.ndarray) -> tuple[bool, Region | None, float]:
        """(changed, region of the change in frame pixels, changed fraction) between two crops."""
        diff = cv2.absdiff(a, b)
        if diff.ndim == 3:
            diff = _channel_max(diff)
        binary = cv2.threshold(diff, self.noise_threshold, 255, cv2.THRESH_BINARY)[1]
        if self._mask_small is not None:
            binary = cv2.bitwise_and(binary, self._mask_small)
        changed = cv2.countNonZero(binary)
        if changed == 0:
            return False, None, 0.0
        fraction = changed / binary.size
        if changed >= max(4 * self._min_w * self._min_h, binary.size // 200):
            # so much changed that it cannot be speckle: skip the per-blob analysis
            x, y, w, h = cv2.boundingRect(binary)
            return True, self._to_frame(x, y, x + w, y + h), fraction
        n, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        min_area = self._min_w * self._min_h
        keep = [
            i
            for i in range(1, n)
            if (stats[i, 2] >= self._min_w and stats[i, 3] >= self._min_h) or stats[i, 4] >= min_area
        ]
        if not keep:
            return False, None, fraction
        x0 = min(int(stats[i, 0]) for i in keep)
        y0 = min(int(stats[i, 1]) for i in keep)
        x1 = max(int(stats[i, 0] + stats[i, 2]) for i in keep)
        y1 = max(int(stats[i, 1] + stats[i, 3]) for i in keep)
        return True, self._to_frame(x0, y0, x1, y1), fraction

    def _to_frame(self, x0: int, y0: int, x1: int, y1: int) -> Region:
        """A box in work-scale crop pixels as a region of the frame."""
        k = self._k
        region = Region.from_extents((self._x0 + x0) * k, (self._y0 + y0) * k, (self._x0 + x1) * k, (self._y0 + y1) * k)
        return region.intersect(self.box) or region


def _channel_max(diff: np.ndarray) -> np.ndarray:
    b, g, r = cv2.split(diff)
    return cv2.max(cv2.max(b, g), r)


def detect_motion(
    frame: Frame | np.ndarray,
    previous: Frame | np.ndarray,
    *,
    region: Region = Region.ALL,
    mask: MaskLike | None = None,
    noise_threshold: int = DEFAULT_NOISE_THRESHOLD,
    min_size: tuple[int, int] = DEFAULT_MIN_SIZE,
    scale: int | None = None,
) -> MotionResult:
    """Did anything (in ``region``, limited to ``mask``) change from ``previous`` to ``frame``?

    Truthy when a changed area at least ``min_size`` big differs by more than ``noise_threshold``
    in some colour channel. The result's region is the box around all such areas.
    """
    frame, previous = as_frame(frame), as_frame(previous)
    if frame.image.shape != previous.image.shape:
        raise ValueError(f"frames differ in size: {frame.image.shape} vs {previous.image.shape}")
    comparer = _Comparer(region, mask, noise_threshold, min_size, scale)
    moved, where, fraction = comparer.compare(comparer.crop(previous), comparer.crop(frame))
    return MotionResult("motion", moved, frame, where if moved else comparer.box, fraction)


def parse_consecutive(consecutive: str | tuple[int, int]) -> tuple[int, int]:
    """Turn ``"10/20"`` or ``(10, 20)`` into (x, y): motion in x of the last y frames."""
    if isinstance(consecutive, str):
        try:
            x_text, y_text = consecutive.split("/")
            x, y = int(x_text), int(y_text)
        except ValueError:
            raise ValueError(f"consecutive must look like '10/20', not {consecutive!r}") from None
    else:
        x, y = int(consecutive[0]), int(consecutive[1])
    if not 1 <= x <= y:
        raise ValueError(f"consecutive {x}/{y}: need 1 <= x <= y")
    return x, y


class MotionDetector:
    """Motion over a stream of frames: truthy once ``x`` of the last ``y`` frame pairs showed motion.

    ``update(frame)`` compares each frame with the one before it and returns a :class:`MotionResult`
    whose ``details`` carry ``moving_frames`` (of the window) and ``window``.
    """

    def __init__(
        self,
        *,
        region: Region = Region.ALL,
        mask: MaskLike | None = None,
        noise_threshold: int = DEFAULT_NOISE_THRESHOLD,
        min_size: tuple[int, int] = DEFAULT_MIN_SIZE,
        consecutive: str | tuple[int, int] = (1, 1),
        scale: int | None = None,
    ) -> None:
        self.x, self.y = parse_consecutive(consecutive)
        self._comparer = _Comparer(region, mask, noise_threshold, min_size, scale)
        self._previous: np.ndarray | None = None
        self._window: deque[bool] = deque(maxlen=self.y)

    def reset(self) -> None:
        """Forget the previous frame and the window (after a gap in the stream)."""
        self._previous = None
        self._window.clear()

    def update(self, frame: Frame | np.ndarray) -> MotionResult:
        """Feed the next frame; returns whether the stream counts as moving at this frame."""
        frame = as_frame(frame)
        current = self._comparer.crop(frame)
        if self._previous is None or self._previous.shape != current.shape:
            self._previous = current
            return MotionResult("motion", False, frame, self._comparer.box, 0.0, {"moving_frames": 0, "window": self.y})
        moved, where, fraction = self._comparer.compare(self._previous, current)
        self._previous = current
        self._window.append(moved)
        count = sum(self._window)
        details = {"moving_frames": count, "window": self.y, "this_frame": moved}
        return MotionResult("motion", count >= self.x, frame, where or self._comparer.box, fraction, details)
