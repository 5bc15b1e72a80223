"""Freeze: the picture has not changed beyond noise for at least ``duration`` seconds of frame time.

Like ffmpeg ``freezedetect``, each frame is compared with the *first* frame of the still run
(not only with the frame before it), so a slow fade or a slow pan, whose neighbouring frames
differ by less than the noise, still counts as change. Pictures are compared as tile averages
(about 160 tiles across), so an encoder refining a still picture is not taken for change; see
:class:`StillTracker` for the rules. The offline scan uses the same tracker on luma.

Example::

    detector = FreezeDetector(duration=2.0, mask=~Mask(clock_region))
    for frame in frames:
        result = detector.update(frame)
        if result:
            print("frozen since", result.details["since"])

    assert not detect_freeze(last_three_seconds, duration=2.0)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import cv2
import numpy as np

from lab.video.frame import Frame, as_frame
from lab.video.region import MaskLike, Region, resolve_mask
from lab.video.result import CheckResult

DEFAULT_FREEZE_NOISE = 24  # luma levels one tile average may move within a still
DEFAULT_FREEZE_MEAN = 0.25  # mean luma change of the picture within a still (ffmpeg freezedetect's -60 dB)
DEFAULT_REFINE_MEAN = 2.0
DEFAULT_REFINE_BUDGET = 3.0


def tile_size(width: int) -> int:
    """Tile edge (px) for stills and motion on tile averages: about 160 tiles across, at most 8 px."""
    return next(b for b in (8, 4, 2, 1) if b == 1 or width // b >= 160)


def shrink(
    grey: np.ndarray, block: int, out: np.ndarray | None = None, scratch: list[np.ndarray] | None = None
) -> np.ndarray:
    """``grey`` averaged over ``block`` x ``block`` tiles (halvings: each an exact 2x2 mean, fast).

    ``scratch`` (a list, empty at first) keeps the intermediate halvings' buffers between calls on
    pictures of one size: written again while still in the cache instead of freshly allocated.
    """
    h, w = grey.shape[:2]
    size = (max(1, w // block), max(1, h // block))
    image = grey
    step = 0
    while block > 2 and block % 2 == 0:
        half = (image.shape[1] // 2, image.shape[0] // 2)
        if scratch is None:
            image = cv2.resize(image, half, interpolation=cv2.INTER_LINEAR)
        else:
            shape = (half[1], half[0], *image.shape[2:])
            if len(scratch) <= step or scratch[step].shape != shape or scratch[step].dtype != image.dtype:
                del scratch[step:]
                scratch.append(np.empty(shape, image.dtype))
            image = cv2.resize(image, half, dst=scratch[step], interpolation=cv2.INTER_LINEAR)
        step += 1
        block //= 2
    interpolation = cv2.INTER_LINEAR if block == 2 and image.shape[1] // 2 == size[0] else cv2.INTER_AREA
    if out is not None:
        return cv2.resize(image, size, dst=out, interpolation=interpolation)
    return cv2.resize(image, size, interpolation=interpolation)


class StillTracker:
    """Where does the current still run start? Fed tile-averaged pictures (:func:`shrink`).

    A still ends when one tile moves by more than ``noise`` (a clock digit, a cursor) or the whole
    picture by more than ``mean`` on average (a fade, as ffmpeg freezedetect measures it). An
    encoder refining a still picture (x264 and MPEG-4 P-frames after a cut) moves tiles by a few
    levels and the mean by hundredths: still a freeze, where a per-pixel test saw motion for a
    second. A still coded afresh (a key frame, a detailed picture sharpening) moves the mean by up
    to ``refine_mean``: followed as the same still while such steps add up to less than
    ``refine_budget`` in a second, which a fade or a slow pan exceeds many times over.
    """

    def __init__(
        self,
        noise: float = DEFAULT_FREEZE_NOISE,
        mean: float = DEFAULT_FREEZE_MEAN,
        refine_mean: float = DEFAULT_REFINE_MEAN,
        refine_budget: float = DEFAULT_REFINE_BUDGET,
    ) -> None:
        self.noise, self.mean = noise, mean
        self.refine_mean, self.refine_budget = refine_mean, refine_budget
        self._reference: np.ndarray | None = None
        self._diff: np.ndarray | None = None
        self._recoded: deque[tuple[float, float]] = deque()
        self.since: float | None = None
        self.changed_at: np.ndarray | None = None  # the tiles that ended the last still, for evidence

    def reset(self) -> None:
        self._reference = None
        self.since = None
        self._recoded.clear()

    def update(self, small: np.ndarray, t: float, mask: np.ndarray | None = None) -> tuple[float, bool]:
        """(start of the current still run, whether this picture started it)."""
        ref = self._reference
        if ref is None or ref.shape != small.shape:
            self._reference, self._diff = small.copy(), np.empty_like(small)
            self.since = t
            self._recoded.clear()
            return t, True
        diff = cv2.absdiff(small, ref, dst=self._diff)
        if mask is not None:
            diff = cv2.bitwise_and(diff, mask, dst=self._diff)
        peak = cv2.minMaxLoc(diff if diff.ndim == 2 else diff.reshape(diff.shape[0], -1))[1]
        started = False
        if peak > self.noise:
            started = True
        else:
            mean = float(np.mean(cv2.mean(diff)[: diff.shape[2] if diff.ndim == 3 else 1]))
            if mean > self.mean:
                while self._recoded and self._recoded[0][0] < t - 1.0:
                    self._recoded.popleft()
                drift = sum(m for _, m in self._recoded) + mean
                if mean > self.refine_mean or drift > self.refine_budget:
                    started = True
                else:  # the same picture coded again: follow it, the still goes on
                    self._recoded.append((t, mean))
                ref[...] = small
        if started:
            ref[...] = small
            self.since = t
            self._recoded.clear()
        assert self.since is not None
        return self.since, started


class FreezeResult(CheckResult):
    """Truthy when frozen; ``details['since']`` is the time of the first frame of the still run,
    ``score`` the still duration so far (s), counting the current frame's display period as
    ffmpeg freezedetect does."""

    @property
    def symptom(self) -> str:
        return "frozen-picture" if self.ok else "picture-moving"


class FreezeDetector:
    """Tracks still runs over a stream; ``update(frame)`` is truthy while the run lasts ``duration`` or more.

    Frames are compared as tile averages in colour (:func:`shrink`, :class:`StillTracker`) inside
    ``region`` and ``mask``; ``noise_threshold`` is how far one tile may move within a still.
    ``min_size`` and ``scale`` are accepted for older callers; tiles replace them.
    """

    def __init__(
        self,
        *,
        duration: float = 2.0,
        region: Region = Region.ALL,
        mask: MaskLike | None = None,
        noise_threshold: float = DEFAULT_FREEZE_NOISE,
        mean_threshold: float = DEFAULT_FREEZE_MEAN,
        min_size: tuple[int, int] = (1, 1),
        scale: int | None = None,
    ) -> None:
        if duration < 0:
            raise ValueError(f"duration must not be negative: {duration}")
        self.duration = float(duration)
        self.region, self.mask = region, mask
        self._tracker = StillTracker(noise_threshold, mean_threshold)
        self._shape: tuple[int, ...] | None = None
        self._since: Frame | None = None
        self._last_time: float | None = None
        self._period = 0.0

    def reset(self) -> None:
        """Forget the still run (after a gap in the stream); the next frame starts a new one."""
        self._tracker.reset()
        self._since = None
        self._last_time = None

    @property
    def since(self) -> Frame | None:
        """The first frame of the current still run."""
        return self._since

    def _setup(self, shape: tuple[int, ...]) -> None:
        self._shape = shape
        self._box, crop_mask = resolve_mask(self.mask, self.region, shape)
        self._block = tile_size(self._box.width)
        self._tile_mask = None
        if crop_mask is not None:
            small = shrink(crop_mask, self._block)
            self._tile_mask = np.where(small >= 128, 255, 0).astype(np.uint8)

    def update(self, frame: Frame | np.ndarray) -> FreezeResult:
        """Feed the next frame; truthy when the picture has been still for ``duration`` seconds."""
        frame = as_frame(frame)
        if self._shape != frame.image.shape:
            self._setup(frame.image.shape)
            self._tracker.reset()
        box, block = self._box, self._block
        small = frame.derived(("tiles", box, block), lambda: shrink(frame.image[box.slices()], block))
        _, changed = self._tracker.update(small, frame.time, self._tile_mask)
        if self._last_time is not None and frame.time > self._last_time:
            self._period = frame.time - self._last_time
        self._last_time = frame.time
        if changed or self._since is None:
            self._since = frame
        # a still frame stays on screen for one frame period: 25 identical frames at 25 fps are 1.0 s still
        still = frame.time - self._since.time + self._period
        frozen = still >= self.duration - 1e-6 and not changed and self._since is not frame
        details = {"since": self._since.time, "since_seq": self._since.seq, "still_for": still}
        return FreezeResult("freeze", frozen, frame, self._box, still, details)


def detect_freeze(
    frames: Iterable[Frame | np.ndarray],
    *,
    duration: float = 2.0,
    region: Region = Region.ALL,
    mask: MaskLike | None = None,
    noise_threshold: float = DEFAULT_FREEZE_NOISE,
    min_size: tuple[int, int] = (1, 1),
) -> FreezeResult:
    """Were the last frames of ``frames`` still for at least ``duration`` seconds (ending at the last frame)?

    Example: ``assert not detect_freeze(frames_of_the_last_3_seconds, duration=2.0)``.
    """
    detector = FreezeDetector(
        duration=duration, region=region, mask=mask, noise_threshold=noise_threshold, min_size=min_size
    )
    result: FreezeResult | None = None
    for frame in frames:
        result = detector.update(frame)
    if result is None:
        raise ValueError("detect_freeze needs at least one frame")
    return result
