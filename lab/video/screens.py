"""Recognise test screens: SMPTE/EBU colour bars and "no signal" pictures.

* :func:`is_colour_bars` finds the seven 75 %/100 % bars (white/grey, yellow, cyan, green,
  magenta, red, blue) side by side across the upper part of the picture, as ffmpeg's
  ``smptebars``/``smptehdbars``/``pal75bars`` and test generators draw them.
* :func:`is_no_signal` tells a box's or capture card's "no signal" screen: give it the rig's own
  reference picture (a logo or the text box, matched with :func:`lab.video.match`) when you have
  one; without one it falls back to a heuristic: a plain non-black colour fills the frame (a
  capture card's blue screen), or a plain background holds one filled message panel around the
  centre; few colours in all. Plain black is :func:`lab.video.is_black`'s business. A splash
  screen with small text on a plain ground cannot be told from "no signal" without a reference.

Example::

    assert is_colour_bars(frame)
    if is_no_signal(frame, reference="rigs/images/no-signal-box.png"): ...
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lab.video.frame import Frame, as_frame
from lab.video.match import Template, match
from lab.video.region import Region
from lab.video.result import CheckResult

BAR_ORDER = ("white", "yellow", "cyan", "green", "magenta", "red", "blue")
_NAMES = {
    (1, 1, 1): "white",
    (0, 1, 1): "yellow",
    (1, 1, 0): "cyan",
    (0, 1, 0): "green",
    (1, 0, 1): "magenta",
    (0, 0, 1): "red",
    (1, 0, 0): "blue",
    (0, 0, 0): "black",
}


class ScreenResult(CheckResult):
    """Truthy when the screen is the one asked about; ``details`` say what was seen."""

    @property
    def symptom(self) -> str:
        return self.kind if self.ok else f"not-{self.kind}"


def _sample(frame: Frame, max_width: int = 480) -> tuple[np.ndarray, int]:
    step = max(1, frame.width // max_width)
    return (frame.image[::step, ::step] if step > 1 else frame.image), step


def _column_names(band: np.ndarray) -> list[str]:
    means = band.mean(axis=0)  # width x 3 (BGR)
    spread = band.std(axis=0).max(axis=1)
    top = max(float(means.max()), 1.0)
    names = []
    for colour, sd in zip(means, spread, strict=True):
        if sd > 40:  # not a vertical bar in this column
            names.append("?")
            continue
        bits = tuple(int(c > 0.45 * top) for c in colour)
        low_ok = all(c < 0.35 * top for c, b in zip(colour, bits, strict=True) if not b)
        names.append(_NAMES.get(bits, "?") if low_ok else "?")  # type: ignore[arg-type]
    return names


def _runs(names: list[str], min_len: int) -> list[tuple[str, int, int]]:
    runs: list[tuple[str, int, int]] = []
    start = 0
    for i in range(1, len(names) + 1):
        if i == len(names) or names[i] != names[start]:
            if i - start >= min_len:
                runs.append((names[start], start, i))
            start = i
    return runs


def is_colour_bars(frame: Frame | np.ndarray, *, min_coverage: float = 0.6) -> ScreenResult:
    """Does the frame show colour bars (the seven bars in order across at least ``min_coverage`` of the width)?"""
    frame = as_frame(frame)
    small, step = _sample(frame)
    h, w = small.shape[:2]
    band = small[int(h * 0.10) : int(h * 0.55)].astype(np.float32)
    names = _column_names(band)
    runs = _runs(names, max(2, w // 40))
    labels = [r[0] for r in runs]
    best = 0.0
    found: tuple[int, int] | None = None
    for i in range(len(runs) - len(BAR_ORDER) + 1):
        if tuple(labels[i : i + len(BAR_ORDER)]) == BAR_ORDER:
            seq = runs[i : i + len(BAR_ORDER)]
            covered = sum(e - s for _, s, e in seq) / w
            if covered > best:
                best, found = covered, (seq[0][1], seq[-1][2])
    region = None
    if found:
        region = Region.from_extents(found[0] * step, int(h * 0.10) * step, found[1] * step, int(h * 0.55) * step)
    details = {"bars": " ".join(labels)[:120]}
    return ScreenResult("colour-bars", best >= min_coverage, frame, region, best, details)


def is_no_signal(
    frame: Frame | np.ndarray,
    *,
    reference: Template | np.ndarray | str | Path | None = None,
    region: Region = Region.ALL,
    uniform_ratio: float = 0.7,
    max_colours: int = 6,
) -> ScreenResult:
    """Is this a "no signal" screen?

    With ``reference`` (the rig's own no-signal picture or a part of it): truthy when it matches
    in ``region``. Without: judged on ``region`` alone; truthy when at most ``max_colours`` colours
    make up 98 % of it, and either one non-black colour covers 99 % of it, or a background covering
    ``uniform_ratio`` of it holds a single filled panel around its centre.
    """
    frame = as_frame(frame)
    if reference is not None:
        m = match(reference, frame, region=region)
        return ScreenResult("no-signal", bool(m), frame, m.region, m.score, {"by": "reference", **m.details})
    box = region.clip(frame.width, frame.height)
    if box is None:
        raise ValueError(f"region {region} lies outside the {frame.width}x{frame.height} frame")
    step = max(1, box.width // 320)
    small = frame.image[box.slices()][::step, ::step]
    quant = (small // 32).astype(np.int32)
    codes = (quant[:, :, 0] * 64 + quant[:, :, 1] * 8 + quant[:, :, 2]).ravel()
    counts = np.bincount(codes, minlength=512)
    order = np.sort(counts)[::-1]
    total = codes.size
    dominant_code = int(np.argmax(counts))
    dominant = order[0] / total
    n_colours = int(np.searchsorted(np.cumsum(order), 0.98 * total) + 1)
    is_black_bg = dominant_code == 0
    panel = _central_panel(codes.reshape(quant.shape[:2]) != dominant_code)
    plain = dominant >= 0.99
    ok = not is_black_bg and n_colours <= max_colours and (plain or (dominant >= uniform_ratio and panel))
    details = {"by": "heuristic", "dominant": round(float(dominant), 3), "colours": n_colours, "panel": panel}
    return ScreenResult("no-signal", ok, frame, box, float(dominant), details)


def _central_panel(other: np.ndarray) -> bool:
    """Do the pixels off the background form one filled box (a message panel) around the centre?"""
    h, w = other.shape
    n, _, stats, _ = cv2.connectedComponentsWithStats(other.astype(np.uint8), connectivity=8)
    if n < 2:
        return False
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, bw, bh, area = (int(v) for v in stats[i])
    cx, cy = x + bw / 2, y + bh / 2
    centred = abs(cx - w / 2) < 0.1 * w and abs(cy - h / 2) < 0.15 * h
    size = bw * bh / (w * h)
    return centred and 0.03 <= size <= 0.6 and area / (bw * bh) >= 0.6
