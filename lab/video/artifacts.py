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

import math
import statistics
from collections import deque

import cv2
import numpy as np
from numpy.lib.stride_tricks import as_strided

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
    For many pictures of one size, keep a :class:`BlockGrid` (it reuses its buffers).
    """
    return BlockGrid(grey.shape[:2], block_size, every).score(grey, step_threshold)


class BlockGrid:
    """Scores the blockiness of many same-size grey pictures (:func:`grey_blockiness`), buffers reused.

    The pixels x-1, x | x+1, x+2 around the sampled boundaries of both directions are copied,
    widened to int16, into one buffer (two strided copies), and the edge test runs once over all
    of them in integer arithmetic: about a dozen numpy operations per picture, whatever its size.
    """

    def __init__(self, shape: tuple[int, ...], block_size: int = 16, every: int = 1) -> None:
        if block_size < 2:
            raise ValueError(f"block_size must be at least 2, not {block_size}")
        self.shape, self.block, self.every = tuple(shape[:2]), block_size, max(1, every)
        h, w = self.shape
        b = block_size
        self._across = self._down = None  # (boundaries along rows, segments shape), (..., ...)
        size = 0
        nr, n = h // b, (w - 3) // b  # boundaries x = k*b - 1 with x + 2 < w
        if nr and n >= 1:
            rows = len(range(0, nr, self.every))
            self._across = (n, (rows, b, n))
            size += rows * b * n
        nc, m = w // b, (h - 3) // b
        if nc and m >= 1:
            cols = len(range(0, nc, self.every))
            self._down = (m, (m, cols, b))
            size += m * cols * b
        self._buffer = np.empty((4, size), np.int16)

    def _gather(self, grey: np.ndarray) -> None:
        b, every, buf = self.block, self.every, self._buffer
        rs, cs = grey.strides[:2]
        start = 0
        if self._across is not None:  # pixels x-1 .. x+2 of boundaries x = k*b - 1, in sampled block rows
            n, seg = self._across
            quad = as_strided(grey[:, b - 2 :], (seg[0], b, n, 4), (rs * b * every, rs, cs * b, cs), writeable=False)
            size = seg[0] * seg[1] * seg[2]
            np.copyto(buf[:, :size].reshape(4, *seg), np.moveaxis(quad, -1, 0))
            start = size
        if self._down is not None:  # rows y-1 .. y+2 of boundaries y = k*b - 1, in sampled block columns
            m, seg = self._down
            band = as_strided(grey[b - 2 :], (m, 4, seg[1], b), (rs * b, rs, cs * b * every, cs), writeable=False)
            np.copyto(buf[:, start:].reshape(4, *seg), np.moveaxis(band, 1, 0))  # (4, m, C, b)

    def score(self, grey: np.ndarray, step_threshold: float = 3.0) -> float:
        """The blockiness score (0-1) of ``grey`` (this grid's shape), as :func:`blockiness` computes it."""
        if tuple(grey.shape[:2]) != self.shape:
            raise ValueError(f"picture is {grey.shape[1]}x{grey.shape[0]}, the grid was made for "
                             f"{self.shape[1]}x{self.shape[0]}")  # fmt: skip
        if self._buffer.shape[1] == 0:
            return 0.0
        self._gather(grey)
        a, b, c, d = self._buffer
        boundary = np.abs(c - b)
        beside = np.abs(b - a)
        beside += np.abs(d - c)
        beside += 1
        beside >>= 1  # (|b-a| + |d-c|) / 2 rounded half up, as cv2.addWeighted rounds
        # an edge: the step beats the threshold and twice the steps beside it (boundary > 2*beside + 1)
        edge = boundary > math.floor(step_threshold)  # the same for integer steps, and cheaper than a float compare
        boundary >>= 1
        edge &= boundary > beside
        parts = []
        start = 0
        for plan, axis in ((self._across, 1), (self._down, 2)):
            if plan is None:
                continue
            seg = plan[1]
            size = seg[0] * seg[1] * seg[2]
            counts = edge[start : start + size].reshape(seg).sum(axis=axis)
            start += size
            parts.append(np.count_nonzero(counts * 2 > self.block) / counts.size)  # most of a segment's pixels
        return float(np.mean(parts))
