"""Offline scan of a recorded clip: when was the picture black, frozen, moving, blocky, or absent?

The scan reads each decoded picture's luma plane straight from the decoder (:mod:`lab.video.luma`:
no colour conversion, buffers reused) and judges black as ffmpeg blackdetect does (on the
decoder's own levels), stills and motion on tile averages of the picture (so an encoder refining
a still picture is not motion), blockiness on a subsample of the block grid, and looks at colour
only for frames that may be a no-signal screen (:func:`~lab.video.screens.is_no_signal`). It
reports intervals in seconds of stream time from the first frame. Conventions
follow ffmpeg's blackdetect/freezedetect: an interval ends at the time of the first frame that
no longer shows the condition (or one frame period after the last frame); a freeze starts at the
first frame of the still run and is reported once it lasted ``freeze_duration``.

"Artifacts" are frames the decoder reported as concealed (damaged by lost data) and the frames
after them up to the next key frame (damage propagates through predicted frames), plus frames
whose blockiness jumps above the clip's own baseline (for captures that carry no decoder flags).

"No picture" covers time the stream has no frames for (gaps in the timestamps, as after lost
packets) and frames showing a no-signal screen.

Example::

    report = scan("clip.ts")
    for interval in report.intervals["black"]:
        print(interval.start, interval.end)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lab.video.artifacts import ArtifactDetector, BlockGrid
from lab.video.frame import Frame
from lab.video.freeze import StillTracker, shrink, tile_size
from lab.video.luma import LumaPicture, LumaReader

KINDS = ("black", "frozen", "motion", "artifacts", "no_picture")


@dataclass(frozen=True)
class Interval:
    """A stretch of stream time ``[start, end)`` in seconds that showed ``kind``."""

    kind: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {"start": round(self.start, 4), "end": round(self.end, 4), "duration": round(self.duration, 4)}


@dataclass
class ScanOptions:
    """Thresholds of the scan (defaults follow ffmpeg blackdetect/freezedetect where those apply)."""

    black_pixel_threshold: float = 0.10
    black_picture_threshold: float = 0.98
    black_min: float = 0.0
    freeze_duration: float = 2.0
    freeze_noise: int = 24  # luma levels a tile average may move within a still (see _Measures)
    freeze_mean: float = 0.25  # mean luma change of the whole picture within a still (freezedetect's -60 dB)
    refine_mean: float = 2.0  # a still re-coded (key frame, refinement) moves the mean by at most this ...
    refine_budget: float = 3.0  # ... and by at most this much in any second (a fade moves it far more)
    motion_noise: int = 12  # luma levels, on tile averages
    motion_merge_gap: float = 0.5
    motion_min: float = 0.0
    artifact_block_size: int = 16
    artifact_merge_gap: float = 0.2
    detect_artifacts: bool = True  # blockiness baseline (decoder-reported damage is always used)
    detect_no_signal: bool = True

    def __post_init__(self) -> None:
        for name in ("black_pixel_threshold", "black_picture_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a fraction between 0 and 1, not {getattr(self, name)}")
        for name in ("black_min", "freeze_duration", "motion_merge_gap", "motion_min", "artifact_merge_gap"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, not {getattr(self, name)}")
        if self.artifact_block_size < 2:
            raise ValueError(f"artifact_block_size must be at least 2, not {self.artifact_block_size}")


@dataclass
class ScanReport:
    """What :func:`scan` found: intervals per kind, frames read, frames missing, the stream's frame rate."""

    path: str
    frames: int = 0
    dropped: int = 0
    fps: float | None = None
    duration: float = 0.0
    stream_start: float | None = None  # the first frame's presentation time in the file (s)
    decode_errors: int = 0  # packets the decoder refused outright
    intervals: dict[str, list[Interval]] = field(default_factory=lambda: {k: [] for k in KINDS})

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "frames": self.frames,
            "dropped": self.dropped,
            "fps": self.fps,
            "duration": round(self.duration, 4),
            "stream_start": self.stream_start,
            "decode_errors": self.decode_errors,
            "intervals": {k: [i.to_dict() for i in v] for k, v in self.intervals.items()},
        }


class _Track:
    """Turns a per-frame condition into intervals, merging gaps up to ``merge_gap`` and dropping short ones."""

    def __init__(self, kind: str, out: list[Interval], merge_gap: float = 0.0, min_duration: float = 0.0) -> None:
        self.kind, self.out, self.merge_gap, self.min_duration = kind, out, merge_gap, min_duration
        self.start: float | None = None
        self.end: float | None = None

    def update(self, on: bool, t: float, start: float | None = None) -> None:
        if on:
            if self.start is None:
                self.start = t if start is None else start
            elif self.end is not None and t - self.end > self.merge_gap:
                self._emit()
                self.start = t if start is None else start
            self.end = None
        elif self.start is not None and self.end is None:
            self.end = t

    def close(self, t_end: float) -> None:
        if self.start is not None and self.end is None:
            self.end = t_end
        self._emit()

    def _emit(self) -> None:
        if self.start is not None and self.end is not None and self.end - self.start >= self.min_duration - 1e-9:
            self.out.append(Interval(self.kind, self.start, self.end))
        self.start = self.end = None


def scan(
    path: str | Path, options: ScanOptions | None = None, *, backend: str = "pyav", threads: int = 1
) -> ScanReport:
    """Scan a clip and return the intervals of each kind (see the module docstring).

    ``threads`` > 1 lets the decoder use threads (less wall time, a little more CPU time).
    """
    opts = options or ScanOptions()
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # small per-frame operations: OpenCV's worker threads only add CPU time
    try:
        return _scan(path, opts, backend, threads)
    finally:
        cv2.setNumThreads(cv_threads)


def _scan(path: str | Path, opts: ScanOptions, backend: str, threads: int) -> ScanReport:
    reader = LumaReader(path, backend=backend, threads=threads)
    report = ScanReport(str(path))
    iv = report.intervals
    black = _Track("black", iv["black"], 0.0, opts.black_min)
    frozen = _Track("frozen", iv["frozen"])
    moving = _Track("motion", iv["motion"], opts.motion_merge_gap, opts.motion_min)
    blocky = _Track("artifacts", iv["artifacts"], opts.artifact_merge_gap)
    nosig = _Track("no_picture", iv["no_picture"])
    artifacts = ArtifactDetector(block_size=opts.artifact_block_size)
    measure: _Measures | None = None
    previous: LumaPicture | None = None
    period = 0.0
    damaged = False
    for pic in reader:
        if measure is None or measure.shape != pic.y.shape or measure.full_range != pic.full_range:
            measure = _Measures(opts, pic.y.shape, pic.full_range)
        if previous is None:
            report.fps = reader.fps
            report.stream_start = pic.stream_time
            period = 1.0 / reader.fps if reader.fps else 0.0
        t = pic.time
        if previous is not None and period and t - previous.time > 1.5 * period:
            gap = _Track("no_picture", iv["no_picture"])
            gap.update(True, previous.time + period)
            gap.close(t)
        report.frames += 1
        if pic.corrupt:
            damaged = True
        elif pic.key_frame:
            damaged = False
        flagged = False
        if opts.detect_artifacts and not damaged:  # before the tile averages: 2-4% less for the two (A/B)
            score = measure.blocks.score(pic.y, measure.step_threshold)
            flagged = artifacts.judge(score)[0]
        blocky.update(damaged or flagged, t)
        is_dark, moved, since = measure.update(pic)
        black.update(is_dark, t)
        moving.update(moved, t)
        still = since is not None and t - since + period >= opts.freeze_duration - 1e-6
        frozen.update(still, t, start=since if still else None)
        if opts.detect_no_signal:
            nosig.update(measure.no_signal(pic), t)
        previous = pic
    end = (previous.time + period) if previous is not None else 0.0
    for track in (black, frozen, moving, blocky, nosig):
        track.close(end)
    iv["no_picture"].sort(key=lambda i: i.start)
    report.dropped = reader.dropped
    report.decode_errors = reader.decode_errors
    report.duration = end
    return report


class _Measures:
    """Per-frame black, motion and still judgements on one luma plane, with reused buffers.

    * black: ffmpeg blackdetect's rule on the decoder's own levels (pix_th of the luma range above
      its floor, pic_th of the pixels); a picture whose tile mean is brighter than a black one can be
      is not black (exact, no pixel read), then a 1-in-16 sample, the exact count only when it is close;
    * still: :class:`~lab.video.freeze.StillTracker` on tile averages (:func:`~lab.video.freeze.shrink`);
    * motion: a tile average moved by more than ``motion_noise`` since the frame before.
    """

    def __init__(self, opts: ScanOptions, shape: tuple[int, ...], full_range: bool) -> None:
        self.opts, self.shape, self.full_range = opts, shape, full_range
        h, w = shape[:2]
        self.block = tile_size(w)
        if full_range:
            self.limit = int(opts.black_pixel_threshold * 255)
            self.step_threshold = 3.0
        else:
            self.limit = int(16 + opts.black_pixel_threshold * (235 - 16))
            self.step_threshold = 3.0 * 219 / 255
        self.n_pixels = h * w
        self.blocks = BlockGrid((h, w), opts.artifact_block_size, every=8)  # 1 in 8 block rows and columns
        self._halvings: list[np.ndarray] = []  # shrink()'s intermediate pictures, reused
        self._small = shrink(np.zeros((h, w), np.uint8), self.block)
        self._previous = np.empty_like(self._small)
        self._diff = np.empty_like(self._small)
        self._have_previous = False
        self._still = StillTracker(opts.freeze_noise, opts.freeze_mean, opts.refine_mean, opts.refine_budget)
        # the exact black count is needed only when the tile mean allows a black picture (see _black)
        covered = h % self.block == 0 and w % self.block == 0
        pic_th = opts.black_picture_threshold
        self.dark_mean = pic_th * self.limit + (1 - pic_th) * 255 + 2 if covered else 255.0
        self._verdict_tiles: np.ndarray | None = None  # the tiles of the last no-signal verdict, and the verdict
        self._verdict = False
        self._verdict_diff = np.empty_like(self._small)

    def update(self, pic: LumaPicture) -> tuple[bool, bool, float | None]:
        """(black, moved since the previous frame, start of the current still run)."""
        y = pic.y
        shrink(y, self.block, out=self._small, scratch=self._halvings)
        dark = cv2.mean(self._small)[0] <= self.dark_mean and self._black(y)
        moved = False
        if self._have_previous:
            cv2.absdiff(self._small, self._previous, dst=self._diff)
            moved = cv2.minMaxLoc(self._diff)[1] > self.opts.motion_noise
        self._have_previous = True
        since, _ = self._still.update(self._small, pic.time)
        self._previous, self._small = self._small, self._previous
        return dark, moved, since

    def _black(self, y: np.ndarray) -> bool:
        pic_th = self.opts.black_picture_threshold
        sample = y[::4, ::4]
        ratio = np.count_nonzero(sample <= self.limit) / sample.size
        if ratio < pic_th - 0.03:
            return False  # plainly not black: no need to count every pixel
        dark = cv2.threshold(y, self.limit, 255, cv2.THRESH_BINARY_INV)[1]
        return cv2.countNonZero(dark) / self.n_pixels >= pic_th

    def no_signal(self, pic: LumaPicture) -> bool:
        """A no-signal screen is mostly one plain colour: only such frames are looked at in colour.

        Call after :meth:`update` (it reads that picture's tiles). A picture whose tiles are within
        ``_SAME_PICTURE`` levels of the last judged one (a held screen, a run of black frames) keeps
        that verdict instead of being converted to colour again.
        """
        tiles = self._previous  # update() swapped: the current picture's tiles
        ref = self._verdict_tiles
        if ref is not None:
            cv2.absdiff(tiles, ref, dst=self._verdict_diff)
            if cv2.minMaxLoc(self._verdict_diff)[1] <= _SAME_PICTURE:
                return self._verdict
        else:
            ref = self._verdict_tiles = np.empty_like(tiles)
        ref[...] = tiles
        self._verdict = self._judge_no_signal(pic)
        return self._verdict

    def _judge_no_signal(self, pic: LumaPicture) -> bool:
        step = max(8, pic.y.shape[1] // 80)  # about 80 pixels across: the verdict is is_no_signal's, this only picks
        sample = pic.y[::step, ::step]
        hist = np.bincount((sample >> 4).ravel(), minlength=16)
        window = hist[:-2] + hist[1:-1] + hist[2:]
        if window.max() < 0.65 * sample.size:
            return False
        from lab.video.screens import is_no_signal  # loads template matching: only when a candidate shows up

        return bool(is_no_signal(Frame(pic.bgr(), pic.time, pic.seq)))


_SAME_PICTURE = 2  # tile levels: a picture this close to the last judged one keeps its no-signal verdict
