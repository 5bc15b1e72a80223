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

    The pixels x-1, x | x+1, x+2 around the sampled boundaries of both directions are copied into
    one uint8 buffer (two strided copies), and the edge test runs once over all of them with seven
    saturating OpenCV operations into preallocated arrays: about a dozen calls per picture, whatever
    its size, and no allocation. Saturation is exact here: a boundary pixel whose two neighbouring
    steps add up to 255 or more can never be an edge (its step would have to exceed 256).
    """

    def __init__(self, shape: tuple[int, ...], block_size: int = 16, every: int = 1) -> None:
        if block_size < 2:
            raise ValueError(f"block_size must be at least 2, not {block_size}")
        self.shape, self.block, self.every = tuple(shape[:2]), block_size, max(1, every)
        h, w = self.shape
        b = block_size
        # (4 x segments shape) of the pixels around the boundaries, as (first row, first column, element
        # strides in rows and columns per axis), and the axis of the segments that runs along a boundary
        self._plans: list[tuple[int, int, tuple[int, ...], tuple[tuple[int, int], ...], int]] = []
        nr, n = h // b, (w - 3) // b  # boundaries x = k*b - 1 with x + 2 < w
        if nr and n >= 1:  # pixels x-1 .. x+2, rows of 1 in `every` block rows: (4, R, b, n)
            rows = len(range(0, nr, self.every))
            self._plans.append((0, b - 2, (4, rows, b, n), ((0, 1), (b * self.every, 0), (1, 0), (0, b)), 2))
        nc, m = w // b, (h - 3) // b
        if nc and m >= 1:  # rows y-1 .. y+2 of boundaries y = k*b - 1, 1 in `every` block columns: (4, m, C, b)
            cols = len(range(0, nc, self.every))
            self._plans.append((b - 2, 0, (4, m, cols, b), ((1, 0), (b, 0), (0, b * self.every), (0, 1)), 3))
        size = sum(p[2][1] * p[2][2] * p[2][3] for p in self._plans)
        self._pixels = np.empty((4, 1, size), np.uint8)  # rows of one line: what cv2 takes as a 1 x size image
        self._step = np.empty((1, size), np.uint8)
        self._beside = np.empty((1, size), np.uint8)
        self._scratch = np.empty((1, size), np.uint8)
        self._edge = np.empty((1, size), np.uint8)  # 255 where a boundary pixel is an edge, else 0
        self._even = np.full((1, size), 0xFE, np.uint8)  # clears the lowest bit
        self._targets: list[tuple[np.ndarray, np.ndarray | None]] = []  # where each plan's pixels go
        self._segments: list[tuple[np.ndarray, int]] = []  # each plan's edge flags, by segment, and its axis
        self._sum = np.int16 if b * 255 <= np.iinfo(np.int16).max else np.int32
        start = 0
        for _, _, dims, _, axis in self._plans:
            count = dims[1] * dims[2] * dims[3]
            target = self._pixels[:, 0, start : start + count].reshape(dims)
            items = None  # rows of `block` pixels (contiguous in a decoder's plane): copied as one item each
            if axis == 3:
                items = np.ndarray(dims[:3], np.dtype((np.void, b)), self._pixels, start, target.strides[:3])
            self._targets.append((target, items))
            self._segments.append((self._edge[0, start : start + count].reshape(dims[1:]), axis - 1))
            start += count

    def score(self, grey: np.ndarray, step_threshold: float = 3.0) -> float:
        """The blockiness score (0-1) of ``grey`` (this grid's shape), as :func:`blockiness` computes it."""
        if tuple(grey.shape[:2]) != self.shape:
            raise ValueError(f"picture is {grey.shape[1]}x{grey.shape[0]}, the grid was made for "
                             f"{self.shape[1]}x{self.shape[0]}")  # fmt: skip
        if not self._plans:
            return 0.0
        rs, cs = grey.strides[:2]
        base = grey.base  # a decoder's plane (lab.video.luma): a view of one flat buffer
        flat = base if isinstance(base, np.ndarray) and base.ndim == 1 and base.dtype == np.uint8 else None
        start = 0
        if flat is not None and flat.flags.c_contiguous:
            start = grey.__array_interface__["data"][0] - flat.__array_interface__["data"][0]
        else:
            flat = None
        for (row, col, dims, steps, _), (target, items) in zip(self._plans, self._targets, strict=True):
            strides = tuple(r * rs + c * cs for r, c in steps)
            if flat is not None and items is not None and cs == 1:  # whole runs of pixels: ~2x faster
                np.copyto(items, np.ndarray(items.shape, items.dtype, flat, start + row * rs, strides[:3]))
            elif flat is not None:  # a bounds-checked view straight on the buffer: a tenth of as_strided's cost
                np.copyto(target, np.ndarray(dims, np.uint8, flat, start + row * rs + col * cs, strides))
            else:
                np.copyto(target, as_strided(grey[row:, col:], dims, strides, writeable=False))
        a, b, c, d = self._pixels
        step, beside, scratch, edge = self._step, self._beside, self._scratch, self._edge
        # an edge: the step |c-b| beats the threshold (integer steps: its floor) and twice the steps
        # beside it, rounded half up, plus one: step > 2 * ((|b-a| + |d-c| + 1) >> 1) + 1, which for
        # integers is (step & ~1) >= |b-a| + |d-c| + 2 (checked for every step and sum in the tests)
        cv2.absdiff(c, b, dst=step)
        cv2.threshold(step, math.floor(step_threshold), 255, cv2.THRESH_TOZERO, dst=step)
        cv2.bitwise_and(step, self._even, dst=step)
        cv2.absdiff(b, a, dst=beside)
        cv2.absdiff(d, c, dst=scratch)
        cv2.addWeighted(beside, 1.0, scratch, 1.0, 2.0, dst=beside)  # saturates at 255: never an edge there
        cv2.compare(step, beside, cv2.CMP_GE, dst=edge)
        half = self.block // 2 * 255
        parts = []
        for flags, axis in self._segments:
            counts = np.add.reduce(flags, axis=axis, dtype=self._sum)
            parts.append(np.count_nonzero(counts > half) / counts.size)  # most of a segment's pixels
        return sum(parts) / len(parts)
