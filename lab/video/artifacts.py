"""Compression artifacts: a blockiness score that rises with macroblocking.

Block codecs (MPEG-2, H.264) quantise 8x8 transform blocks inside 16x16 macroblocks. When the
bitrate starves, or when lost packets make the decoder conceal damaged macroblocks, the block grid
shows: luma steps *at* block boundaries that are larger than the steps just beside them. The
score is the fraction of block-boundary segments (``block_size`` pixels long, both directions)
whose step exceeds ``step_threshold`` and twice the activity of the neighbouring columns/rows.
Clean pictures score low (edges of the content that happen to sit on the grid), starved or
damaged ones higher; the absolute level depends on content, so :class:`ArtifactDetector`
compares each frame with the recent baseline of the same stream.

Limits, measured (tests/video/test_accuracy.py and the notes in benchmarks/video.md): it finds
bitrate starvation (a burst of coarsely quantised frames) within one frame at the decoder's own
resolution. It does *not* see packet-loss damage that the decoder concealed: FFmpeg's MPEG-2
concealment smears neighbouring content instead of drawing blocks, and the offline scan takes
that damage from the decoder's own "corrupt" flag instead. A picture upscaled by the box
(e.g. 480x270 shown at 1280x720) and re-compressed by the capture's JPEG encoder loses the
block grid too; give ``region``/``block_size`` for the scale you know, and do not rely on it there.

Example::

    blockiness(frame).score            # 0.0 .. 1.0
    detector = ArtifactDetector()
    for frame in frames:
        if detector.update(frame): print("macroblocking at", frame.time)
"""

from __future__ import annotations

import statistics
from collections import deque

import cv2
import numpy as np

from lab.video.frame import Frame, as_frame
from lab.video.region import Region
from lab.video.result import CheckResult


class BlockinessResult(CheckResult):
    """Truthy when the score exceeds the threshold the caller gave (or the detector's baseline)."""

    @property
    def symptom(self) -> str:
        return "macroblocking" if self.ok else "clean-picture"


def _edges(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, step_threshold: float) -> np.ndarray:
    """Per boundary pixel: block edge when the step b|c beats the threshold and twice the steps beside it."""
    boundary = cv2.absdiff(c, b)
    beside = cv2.addWeighted(cv2.absdiff(b, a), 0.5, cv2.absdiff(d, c), 0.5, 0.0)
    edge = (boundary > step_threshold) & (boundary > cv2.addWeighted(beside, 2.0, beside, 0.0, 1.0))
    return edge


def _segment_edges(
    grey: np.ndarray, block: int, step_threshold: float, axes: tuple[int, ...] = (1, 0)
) -> tuple[np.ndarray, np.ndarray]:
    """Block edges along vertical boundaries (row segments x boundaries) and horizontal ones.

    Only the four columns (rows) around each boundary are read: x-1, x | x+1, x+2. A boundary
    segment ``block`` pixels long is an edge when most of its pixels are.
    """
    height, width = grey.shape
    out = []
    for axis, size, other in ((1, width, height), (0, height, width)):
        if axis not in axes:
            out.append(np.zeros((0, 0), bool))
            continue
        pos = np.arange(block - 1, size - 2, block)
        pos = pos[pos >= 1]
        if len(pos) == 0 or other < block:
            out.append(np.zeros((0, 0), bool))
            continue
        a, b, c, d = (np.take(grey, pos + k, axis=axis) for k in (-1, 0, 1, 2))
        edge = _edges(a, b, c, d, step_threshold)
        n = (other // block) * block
        if axis == 1:  # edge: other(rows) x boundaries
            seg = edge[:n].reshape(other // block, block, -1).mean(axis=1)
        else:  # edge: boundaries x other(columns)
            seg = edge[:, :n].reshape(len(pos), other // block, block).mean(axis=2)
        out.append(seg > 0.5)
    return out[0], out[1]


def blockiness(
    frame: Frame | np.ndarray,
    *,
    region: Region = Region.ALL,
    block_size: int = 8,
    step_threshold: float = 3.0,
    threshold: float = 0.15,
) -> BlockinessResult:
    """Score (0-1) of block-grid edges in ``region``; truthy when the score exceeds ``threshold``.

    ``block_size`` is the grid the decoder worked on, in frame pixels (8 for DCT blocks, 16 for
    macroblocks; scale it when the box upscales, e.g. 12 for 8 px blocks shown 1.5x).
    """
    if block_size < 2:
        raise ValueError(f"block_size must be at least 2, not {block_size}")
    frame = as_frame(frame)
    box = region.clip(frame.width, frame.height)
    if box is None:
        raise ValueError(f"region {region} lies outside the {frame.width}x{frame.height} frame")
    grey = frame.grey()[box.slices()]
    across, down = _segment_edges(grey, block_size, step_threshold)
    parts = [a.mean() for a in (across, down) if a.size]
    score = float(np.mean(parts)) if parts else 0.0
    return BlockinessResult("blockiness", score > threshold, frame, box, score, {"block_size": block_size})


class ArtifactDetector:
    """Flags frames whose blockiness jumps above the stream's own recent baseline.

    The baseline is the median score of the last ``window`` frames that were not flagged; a frame
    is flagged when its score exceeds that by ``min_rise`` and by ``mad_factor`` median absolute
    deviations. Needs ``warmup`` frames before it flags anything.
    """

    def __init__(
        self,
        *,
        region: Region = Region.ALL,
        block_size: int = 16,
        window: int = 50,
        warmup: int = 5,
        min_rise: float = 0.06,
        mad_factor: float = 4.0,
    ) -> None:
        self.region, self.block_size = region, block_size
        self.window, self.warmup = window, warmup
        self.min_rise, self.mad_factor = min_rise, mad_factor
        self._history: deque[float] = deque(maxlen=window)

    def update(self, frame: Frame | np.ndarray) -> BlockinessResult:
        """Score the next frame; truthy when it shows more blocking than the stream usually does."""
        result = blockiness(frame, region=self.region, block_size=self.block_size, threshold=1.0)
        result.ok, baseline = self.judge(result.score)
        result.details.update({"baseline": baseline})
        return result

    def judge(self, score: float) -> tuple[bool, float]:
        """(flagged, baseline) for the next frame's blockiness ``score`` (for callers that score it themselves)."""
        flagged = False
        baseline = score
        if len(self._history) >= self.warmup:
            baseline = statistics.median(self._history)  # 50 floats: plain Python beats numpy's call overhead
            mad = statistics.median([abs(h - baseline) for h in self._history])
            flagged = score > baseline + max(self.min_rise, self.mad_factor * mad)
        if not flagged:
            self._history.append(score)
        return flagged, baseline


def grey_blockiness(grey: np.ndarray, block_size: int = 16, step_threshold: float = 3.0, every: int = 1) -> float:
    """The blockiness score of a grey picture (as :func:`blockiness`), read through strided views.

    Only the four pixel columns (rows) around each block boundary are read, from every
    ``every``-th row (column) of blocks: a 1-in-``every`` subsample of the boundary segments,
    whole blocks so the grid stays where the decoder put it. ``every=1`` scores every segment.
    """
    b = block_size
    h, w = grey.shape
    nr, nc = h // b, w // b
    parts = []
    n = (w - 3) // b  # boundaries x = k*b - 1 with x + 2 < w
    if nr and n >= 1:
        rows = grey[: nr * b].reshape(nr, b, w)[::every]  # (R, b, w): whole block rows, a view
        quad = [rows[:, :, b - 2 + k : b - 2 + k + n * b : b] for k in range(4)] if b >= 2 else []
        parts.append(_view_edges(quad, step_threshold, along=1).mean())
    n = (h - 3) // b
    if nc and n >= 1:
        cols = grey[:, : nc * b].reshape(h, nc, b)[:, ::every]  # (h, C, b): whole block columns, a view
        quad = [cols[b - 2 + k : b - 2 + k + n * b : b] for k in range(4)]
        parts.append(_view_edges(quad, step_threshold, along=2).mean())
    return float(np.mean(parts)) if parts else 0.0


def _view_edges(quad: list[np.ndarray], step_threshold: float, along: int) -> np.ndarray:
    """Segments that are block edges: ``quad`` holds the pixels x-1, x | x+1, x+2 across each boundary,
    ``along`` is the axis running along it; an edge when most of a segment's pixels step (see :func:`_edges`)."""
    a, b, c, d = (q.astype(np.int16) for q in quad)
    boundary = np.abs(c - b)
    beside = np.floor((np.abs(b - a) + np.abs(d - c)) * 0.5 + 0.5)  # as cv2.addWeighted rounds
    edge = (boundary > step_threshold) & (boundary > np.minimum(beside * 2 + 1, 255))
    return edge.mean(axis=along) > 0.5
