"""The scan's blockiness score (BlockGrid, vectorised) against the rule written out pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest

from lab.video.artifacts import BlockGrid, grey_blockiness


def _naive(grey: np.ndarray, b: int, threshold: float, every: int) -> float:
    """Boundaries x = k*b - 1: a pixel is an edge when |c-b| > threshold and > 2*round(mean(|b-a|, |d-c|)) + 1;
    a segment (b pixels along the boundary, in 1 of ``every`` block rows/columns) is an edge when most are."""
    g = grey.astype(int)
    h, w = g.shape

    def edge(a: int, b_: int, c: int, d: int) -> bool:
        step, beside = abs(c - b_), (abs(b_ - a) + abs(d - c) + 1) // 2
        return step > threshold and step > min(2 * beside + 1, 255)

    parts = []
    across = [
        sum(edge(*(int(g[r * b + i, x + k]) for k in (-1, 0, 1, 2))) for i in range(b)) * 2 > b
        for r in range(0, h // b, every)
        for x in range(b - 1, w - 2, b)
    ]
    down = [
        sum(edge(*(int(g[y + k, c * b + i]) for k in (-1, 0, 1, 2))) for i in range(b)) * 2 > b
        for y in range(b - 1, h - 2, b)
        for c in range(0, w // b, every)
    ]
    parts = [sum(s) / len(s) for s in (across, down) if s]
    return sum(parts) / len(parts) if parts else 0.0


@pytest.mark.parametrize(("h", "w", "b", "every"), [(64, 96, 8, 1), (70, 101, 16, 2), (37, 53, 12, 1), (48, 40, 8, 3)])
def test_block_grid_scores_the_rule_exactly(h: int, w: int, b: int, every: int) -> None:
    rng = np.random.default_rng(h * w + b)
    blocks = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1)).repeat(4, 0).repeat(4, 1)[:h, :w]  # a blocky picture
    grey = np.clip(blocks + rng.integers(-3, 4, (h, w)), 0, 255).astype(np.uint8)
    padded = np.zeros((h, w + 13), np.uint8)  # a decoder's plane: rows longer than the picture
    padded[:, :w] = grey
    view = padded[:, :w]
    grid = BlockGrid(view.shape, b, every)
    for threshold in (3.0, 3.0 * 219 / 255, 10.0):
        expected = _naive(grey, b, threshold, every)
        assert grid.score(view, threshold) == pytest.approx(expected, abs=1e-12)
        assert grey_blockiness(grey, b, threshold, every) == pytest.approx(expected, abs=1e-12)
        flat = np.zeros(h * (w + 13) + 7, np.uint8)  # as lab.video.luma hands a plane over: a view of a flat buffer
        flat[: h * (w + 13)].reshape(h, w + 13)[:, :w] = grey
        plane = flat[: h * (w + 13)].reshape(h, w + 13)[:, :w]
        assert plane.base is flat
        assert grid.score(plane, threshold) == pytest.approx(expected, abs=1e-12)
    assert 0.0 < grid.score(view) <= 1.0
    with pytest.raises(ValueError, match="grid was made for"):
        grid.score(grey[:-1])


def test_edge_rule_in_saturating_uint8_matches_the_integer_rule() -> None:
    """BlockGrid tests ``(step & ~1) >= min(|b-a| + |d-c| + 2, 255)`` (saturating uint8): the rule
    ``step > 2 * ((|b-a| + |d-c| + 1) >> 1) + 1`` for every step 0-255 and every sum 0-510."""
    step = np.arange(256)[:, None]
    beside_sum = np.arange(511)[None, :]
    rule = step > 2 * ((beside_sum + 1) >> 1) + 1
    saturating = (step & 0xFE) >= np.minimum(beside_sum + 2, 255)
    assert (rule == saturating).all()
