"""Black screen detection, in the two ways labs need it.

* ``mode="max"`` (stb-tester's way): black when no pixel of the region is brighter than
  ``threshold`` (0-255 luma). Strict: a single lit pixel (a subtitle, a cursor) is not black.
* ``mode="ratio"`` (ffmpeg ``blackdetect``'s way): black when at least ``picture_threshold``
  (pic_th, default 0.98) of the pixels are darker than ``pixel_threshold`` (pix_th, default 0.10
  of the luma range). Tolerant of noise and a small logo; catches the darkest part of a fade.

Example::

    assert not is_black(frame)                          # the picture is up
    if is_black(frame, mode="ratio"): ...               # as ffmpeg blackdetect would say
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from lab.video.frame import Frame, as_frame
from lab.video.motion import small_image
from lab.video.region import MaskLike, Region, resolve_mask
from lab.video.result import CheckResult


class BlackResult(CheckResult):
    """Truthy when the region is black. ``score`` is the maximum luma (max mode) or the dark ratio (ratio mode)."""

    @property
    def symptom(self) -> str:
        return "black-screen" if self.ok else "picture-present"


def is_black(
    frame: Frame | np.ndarray,
    *,
    region: Region = Region.ALL,
    mask: MaskLike | None = None,
    mode: Literal["max", "ratio"] = "max",
    threshold: int = 20,
    pixel_threshold: float = 0.10,
    picture_threshold: float = 0.98,
) -> BlackResult:
    """Is the picture (in ``region``, limited to ``mask``) black?

    In max mode the score is the brightest luma found; for a plainly lit picture that is the
    brightest pixel of a 1-in-4 sample (enough to say "not black" without converting every pixel).

    ``threshold`` applies in max mode; ``pixel_threshold`` and ``picture_threshold`` (ffmpeg's
    pix_th and pic_th, both fractions) in ratio mode. Luma is full range (0-255), as decoded BGR
    frames are; ffmpeg applies pix_th to the limited range of the encoded stream, which maps to the
    same picture.
    """
    frame = as_frame(frame)
    box, crop_mask = resolve_mask(mask, region, frame.image.shape)
    if mode == "max":
        if crop_mask is None and box.width * box.height >= 256 * 256 and frame.width % 4 == frame.height % 4 == 0:
            # fast path: a lit pixel among a nearest-neighbour sample is a lit pixel of the frame;
            # sample i is frame pixel 4i, so only samples whose pixel lies inside the box count
            small = small_image(frame, 4)[-(-box.y // 4) : box.bottom // 4, -(-box.x // 4) : box.right // 4]
            lit = int(cv2.minMaxLoc(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))[1]) if small.size else 0
            if lit > threshold:
                return BlackResult("black", False, frame, box, float(lit), {"mode": "max", "sampled": True})
        grey = frame.grey()[box.slices()]
        max_value = int(cv2.minMaxLoc(grey, crop_mask)[1])
        return BlackResult("black", max_value <= threshold, frame, box, float(max_value), {"mode": "max"})
    if mode != "ratio":
        raise ValueError(f"mode must be 'max' or 'ratio', not {mode!r}")
    grey = frame.grey()[box.slices()]
    limit = float(np.floor(pixel_threshold * 255.0))
    dark = cv2.threshold(grey, limit, 255, cv2.THRESH_BINARY_INV)[1]  # 255 where luma <= limit
    if crop_mask is not None:
        dark = cv2.bitwise_and(dark, crop_mask)
        looked = int(cv2.countNonZero(crop_mask))
    else:
        looked = grey.size
    n_dark = int(cv2.countNonZero(dark))
    ratio = n_dark / max(1, looked)
    return BlackResult("black", ratio >= picture_threshold, frame, box, ratio, {"mode": "ratio"})
