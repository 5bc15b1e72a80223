"""Regions and masks: the arithmetic scenarios use to say where a check looks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lab.video import Mask, Region, detect_motion, is_black


def test_region_intersection_and_bounding_box() -> None:
    a, b = Region(0, 0, 100, 50), Region(50, 25, 100, 50)
    assert a & b == Region(50, 25, 50, 25)
    assert a & Region(200, 200, 10, 10) is None
    assert a.bounding_box(b) == Region(0, 0, 150, 75)
    assert Region(10, 10, 20, 20).grow(5) == Region(5, 5, 30, 30)
    with pytest.raises(ValueError, match="negative"):
        Region(0, 0, -1, 5)


def test_mask_union_intersection_subtraction_inversion() -> None:
    shape = (100, 200)
    a, b = Region(0, 0, 100, 100), Region(50, 0, 100, 100)
    assert (a | b).to_array(shape).sum() == 150 * 100
    assert (Mask(a) & b).to_array(shape).sum() == 50 * 100
    assert (a - b).to_array(shape).sum() == 50 * 100
    assert (~Mask(a)).to_array(shape).sum() == 100 * 100
    inv = ~(Mask(a) | b)
    assert inv.to_array(shape)[:, 150:].all() and not inv.to_array(shape)[:, :150].any()
    assert (a | b).bounding_box(shape) == Region(0, 0, 150, 100)


def test_mask_from_png_alpha_and_from_grey(tmp_path) -> None:
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[10:20, 5:25, 3] = 255
    cv2.imwrite(str(tmp_path / "alpha.png"), rgba)
    m = Mask.from_png(tmp_path / "alpha.png").to_array((40, 60))
    assert m.sum() == 200 and m[10:20, 5:25].all()
    grey = np.zeros((40, 60), np.uint8)
    grey[0:5, 0:5] = 255
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    assert Mask.from_png(tmp_path / "grey.png").to_array((40, 60)).sum() == 25
    with pytest.raises(ValueError, match="is 60x40 but the frame is 100x100"):
        Mask.from_png(tmp_path / "alpha.png").to_array((100, 100))
    with pytest.raises(ValueError, match="cannot read mask"):
        Mask.from_png(tmp_path / "missing.png")


def test_checks_honour_masks() -> None:
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[10:20, 10:20] = 255  # a lit "clock" in the corner
    clock = Region(0, 0, 40, 40)
    assert not is_black(frame)
    assert is_black(frame, mask=~Mask(clock))
    assert is_black(frame, region=Region(80, 60, 80, 60))
    moved = frame.copy()
    moved[10:20, 10:20] = 0
    moved[12:22, 12:22] = 255
    assert detect_motion(moved, frame)
    assert not detect_motion(moved, frame, mask=~Mask(clock))
    with pytest.raises(ValueError, match="nothing of the"):
        is_black(frame, mask=Mask(clock) - clock)
