"""Freeze: the picture has not changed beyond noise for at least ``duration`` seconds of frame time.

Like ffmpeg ``freezedetect``, each frame is compared with the *first* frame of the still run
(not only with the frame before it), so a slow fade or a slow pan, whose neighbouring frames
differ by less than the noise, still counts as change. The comparison is the same colour
difference as :mod:`lab.video.motion` (noise threshold, mask, minimum size).

Example::

    detector = FreezeDetector(duration=2.0, mask=~Mask(clock_region))
    for frame in frames:
        result = detector.update(frame)
        if result:
            print("frozen since", result.details["since"])

    assert not detect_freeze(last_three_seconds, duration=2.0)
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from lab.video.frame import Frame, as_frame
from lab.video.motion import _Comparer
from lab.video.region import MaskLike, Region
from lab.video.result import CheckResult

DEFAULT_FREEZE_NOISE = 12


class FreezeResult(CheckResult):
    """Truthy when frozen; ``details['since']`` is the time of the first frame of the still run,
    ``score`` the still duration so far (s), counting the current frame's display period as
    ffmpeg freezedetect does."""

    @property
    def symptom(self) -> str:
        return "frozen-picture" if self.ok else "picture-moving"


class FreezeDetector:
    """Tracks still runs over a stream; ``update(frame)`` is truthy while the run lasts ``duration`` or more."""

    def __init__(
        self,
        *,
        duration: float = 2.0,
        region: Region = Region.ALL,
        mask: MaskLike | None = None,
        noise_threshold: int = DEFAULT_FREEZE_NOISE,
        min_size: tuple[int, int] = (1, 1),
        scale: int | None = None,
    ) -> None:
        if duration < 0:
            raise ValueError(f"duration must not be negative: {duration}")
        self.duration = float(duration)
        self._comparer = _Comparer(region, mask, noise_threshold, min_size, scale)
        self._reference: np.ndarray | None = None
        self._since: Frame | None = None
        self._last_time: float | None = None
        self._period = 0.0

    def reset(self) -> None:
        """Forget the still run (after a gap in the stream); the next frame starts a new one."""
        self._reference = None
        self._since = None
        self._last_time = None

    @property
    def since(self) -> Frame | None:
        """The first frame of the current still run."""
        return self._since

    def update(self, frame: Frame | np.ndarray) -> FreezeResult:
        """Feed the next frame; truthy when the picture has been still for ``duration`` seconds."""
        frame = as_frame(frame)
        current = self._comparer.crop(frame)
        if self._reference is None or self._reference.shape != current.shape or self._since is None:
            changed, where = True, None
        else:
            changed, where, _ = self._comparer.compare(self._reference, current)
        if self._last_time is not None and frame.time > self._last_time:
            self._period = frame.time - self._last_time
        self._last_time = frame.time
        if changed:
            self._reference, self._since = current, frame
        # a still frame stays on screen for one frame period: 25 identical frames at 25 fps are 1.0 s still
        still = frame.time - self._since.time + self._period
        frozen = still >= self.duration - 1e-6 and not changed and self._since is not frame
        details = {"since": self._since.time, "since_seq": self._since.seq, "still_for": still}
        return FreezeResult("freeze", frozen, frame, where or self._comparer.box, still, details)


def detect_freeze(
    frames: Iterable[Frame | np.ndarray],
    *,
    duration: float = 2.0,
    region: Region = Region.ALL,
    mask: MaskLike | None = None,
    noise_threshold: int = DEFAULT_FREEZE_NOISE,
    min_size: tuple[int, int] = (1, 1),
) -> FreezeResult:
    """Were the last frames of ``frames`` still for at least ``duration`` seconds (ending at the last frame)?

    Example: ``assert not detect_freeze(capture.last(3.0), duration=2.0)``.
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
