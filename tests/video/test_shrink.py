"""Tile averages (``shrink``) with reused intermediate buffers: the same tiles as freshly allocated ones."""

from __future__ import annotations

import numpy as np
import pytest

from lab.video.freeze import shrink


@pytest.mark.parametrize("shape", [(72, 128), (45, 80), (71, 133), (48, 64, 3)])
@pytest.mark.parametrize("block", [1, 2, 4, 8, 16])
def test_shrink_with_scratch_gives_the_same_tiles(shape: tuple[int, ...], block: int) -> None:
    rng = np.random.default_rng(block * 1000 + shape[0])
    scratch: list[np.ndarray] = []
    out = None
    for _ in range(3):  # the buffers are made on the first call and reused after
        grey = rng.integers(0, 256, shape).astype(np.uint8)
        expected = shrink(grey, block)
        out = np.empty_like(expected) if out is None else out
        got = shrink(grey, block, out=out, scratch=scratch)
        assert got.shape == expected.shape and (got == expected).all()
    halvings = len(scratch)
    shrink(rng.integers(0, 256, (shape[0] * 2, shape[1] * 2, *shape[2:])).astype(np.uint8), block, scratch=scratch)
    assert len(scratch) >= halvings  # another size: the buffers are remade for it, not misused
    again = rng.integers(0, 256, shape).astype(np.uint8)
    assert (shrink(again, block, scratch=scratch) == shrink(again, block)).all()
