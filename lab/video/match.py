"""Template match: find a reference picture (a logo, a button, a menu item) in a frame.

Three passes, learned from stb-tester and from its grey-on-blue false positives (its issue 793):

1. **Coarse**: normalised cross-correlation (``TM_CCOEFF_NORMED``) of the grey frame and the grey
   reference on a pyramid level (2x2 averages per level) where the reference is still at least
   ~12 px high; the best few peaks become candidates (those far below the threshold are not
   worth refining).
2. **Refine**: each candidate is followed down the pyramid to full resolution in a small window,
   giving the exact position and the grey ``score``.
3. **Confirm in colour**: the matched patch and the reference are compared pixel by pixel in
   luma (after a 3x3 blur) and in BGR colour on 4x4 averages (the largest per-channel
   difference; capture encoders keep colour at quarter resolution), each eroded to forgive edge
   and JPEG noise; any difference left above ``confirm_threshold`` rejects the match. A grey
   logo therefore does not match the same shape drawn in blue, even where their luma is identical.

A mask (``Mask``, PNG, array) or a transparent reference PNG limits all three passes to the
reference's opaque pixels.

Example::

    result = match("images/logo-bbc1.png", frame, region=Region(1080, 20, 200, 120))
    if result:
        print(result.region, result.score)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lab.video.frame import Frame, as_frame, half
from lab.video.region import Mask, MaskLike, Region
from lab.video.result import CheckResult

MIN_COARSE_SIDE = 12
MAX_LEVELS = 4
MIN_MASKED_PIXELS = 150
COARSE_MARGIN = 0.3


@dataclass(frozen=True)
class MatchParameters:
    """Thresholds of the three passes.

    ``match_threshold``: grey correlation (0-1) a position needs at full resolution.
    ``confirm_threshold``: colour difference (0-1 of the 0-255 range) a pixel may show after erosion.
    ``erode_passes``: 3x3 erosions of the difference image before confirming (edge/JPEG noise).
    ``candidates``: coarse peaks refined.
    """

    match_threshold: float = 0.85
    confirm_threshold: float = 0.20
    erode_passes: int = 1
    candidates: int = 3


class MatchResult(CheckResult):
    """Truthy when the reference was found and confirmed in colour.

    ``region`` is where the best candidate sits (also when not confirmed), ``score`` its grey
    correlation; ``details`` carry ``luma_diff`` and ``colour_diff`` (differences left after
    erosion, 0-1; ``confirm_diff`` is the larger), ``why`` when falsy, and ``reference`` (its
    file name when it came from a file).
    """

    @property
    def symptom(self) -> str:
        name = self.details.get("reference", "reference")
        return f"match:{name}" if self.ok else f"no-match:{name}"

    @property
    def position(self) -> tuple[int, int] | None:
        return None if self.region is None else (self.region.x, self.region.y)


class Template:
    """A reference picture prepared for matching: BGR, grey pyramid, and mask pyramid when masked.

    Build it once and reuse it across frames (``match`` caches templates made from file paths).
    """

    def __init__(self, image: np.ndarray, mask: np.ndarray | None = None, *, name: str = "reference") -> None:
        if image.ndim == 3 and image.shape[2] == 4:
            alpha = image[:, :, 3]
            image = np.ascontiguousarray(image[:, :, :3])
            if mask is None and (alpha < 255).any():
                mask = alpha
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"reference {name}: expected an 8-bit BGR/BGRA image, got {image.dtype} {image.shape}")
        if image.shape[0] < 2 or image.shape[1] < 2:
            raise ValueError(f"reference {name} is too small: {image.shape[1]}x{image.shape[0]}")
        self.name = name
        self.image = image
        self.mask: np.ndarray | None = None
        if mask is not None:
            if mask.shape[:2] != image.shape[:2]:
                raise ValueError(f"reference {name}: mask {mask.shape[:2]} does not fit image {image.shape[:2]}")
            binary = np.where(mask > 0, 255, 0).astype(np.uint8)
            if not binary.any():
                raise ValueError(f"reference {name}: its mask/alpha hides every pixel")
            self.mask = None if binary.all() else binary
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        self.grey = [grey]
        self.masks: list[np.ndarray | None] = [self.mask]
        while len(self.grey) <= MAX_LEVELS and min(self.grey[-1].shape) // 2 >= MIN_COARSE_SIDE:
            smaller = half(self.grey[-1])
            m = self.masks[-1]
            small_mask = None if m is None else _shrink_mask(m, smaller.shape)
            if small_mask is not None and np.count_nonzero(small_mask) < MIN_MASKED_PIXELS:
                break  # too few reference pixels left to search with
            self.grey.append(smaller)
            self.masks.append(small_mask)
        self.blurred_grey = cv2.GaussianBlur(grey, (3, 3), 0)
        side = min(self.height, self.width)
        self.colour_scale = 4 if side >= 32 else 2 if side >= 16 else 1
        k = self.colour_scale
        self.small_size = (max(1, self.width // k), max(1, self.height // k))
        self.small = image if k == 1 else cv2.resize(image, self.small_size, interpolation=cv2.INTER_AREA)
        self.small_mask: np.ndarray | None = None
        if self.mask is not None:
            self.small_mask = self.mask if k == 1 else _shrink_mask(self.mask, self.small.shape)
        self.flat = [_is_flat(g, m) for g, m in zip(self.grey, self.masks, strict=True)]

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @classmethod
    def load(cls, path: str | Path) -> Template:
        """Read a PNG/JPEG reference; a transparent PNG's alpha becomes its mask."""
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ValueError(f"cannot read reference image {path}: missing or not an image")
        if image.dtype == np.uint16:
            image = (image // 257).astype(np.uint8)
        return cls(image, name=Path(path).name)


def _is_flat(grey: np.ndarray, mask: np.ndarray | None) -> bool:
    """A single-colour reference (in its mask) has no correlation to speak of: it is matched by difference."""
    values = grey if mask is None else grey[mask > 0]
    return float(values.std()) < 1.0


def _shrink_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    small = cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    small = np.where(small >= 250, 255, 0).astype(np.uint8)  # only pixels wholly inside the mask
    return small if small.any() else np.where(cv2.resize(mask, (shape[1], shape[0])) > 0, 255, 0).astype(np.uint8)


_TEMPLATE_CACHE: dict[tuple[str, float, int], Template] = {}


def as_template(reference: Template | np.ndarray | str | Path, mask: MaskLike | None = None) -> Template:
    """Turn a path, an array or a Template into a Template (file templates are cached by path and mtime).

    ``mask`` (an array of the reference's size, a :class:`Mask`, or a PNG) replaces the alpha.
    """
    if mask is not None and not isinstance(mask, np.ndarray):
        base = as_template(reference)
        array = Mask(mask).to_array(base.image.shape)
        return Template(base.image, array.astype(np.uint8) * 255, name=base.name)
    if isinstance(reference, Template):
        return reference if mask is None else Template(reference.image, mask, name=reference.name)
    if isinstance(reference, np.ndarray):
        return Template(reference, mask)
    path = Path(reference)
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise ValueError(f"cannot read reference image {path}: {exc.strerror}") from None
    key = (str(path.resolve()), stat.st_mtime, stat.st_size)
    template = _TEMPLATE_CACHE.get(key)
    if template is None:
        if len(_TEMPLATE_CACHE) > 256:
            _TEMPLATE_CACHE.clear()
        template = _TEMPLATE_CACHE[key] = Template.load(path)
    return template if mask is None else Template(template.image, mask, name=template.name)


def _ncc(image: np.ndarray, templ: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if mask is None:
        scores = cv2.matchTemplate(image, templ, cv2.TM_CCOEFF_NORMED)
    else:
        scores = cv2.matchTemplate(image, templ, cv2.TM_CCOEFF_NORMED, mask=mask)
    return np.nan_to_num(scores, nan=0.0, posinf=0.0, neginf=0.0, copy=False)


def _sqdiff_score(image: np.ndarray, templ: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """For flat (single-colour) references, where correlation is undefined: 1 - normalised squared difference."""
    scores = cv2.matchTemplate(image, templ, cv2.TM_SQDIFF, mask=mask) if mask is not None else None
    if scores is None:
        scores = cv2.matchTemplate(image, templ, cv2.TM_SQDIFF)
    n = float(templ.size if mask is None else np.count_nonzero(mask))
    return 1.0 - np.sqrt(np.maximum(scores, 0) / max(1.0, n)) / 255.0


def _scores(image: np.ndarray, template: Template, level: int) -> np.ndarray:
    templ, mask = template.grey[level], template.masks[level]
    if template.flat[level]:
        return _sqdiff_score(image, templ, mask)
    return _ncc(image, templ, mask)


def _peaks(scores: np.ndarray, count: int, tw: int, th: int) -> list[tuple[int, int]]:
    """The ``count`` best positions, each at least half a template apart."""
    scores = scores.copy()
    found: list[tuple[int, int]] = []
    for _ in range(count):
        _, best, _, (x, y) = cv2.minMaxLoc(scores)
        if best <= -1.0 or (found and best <= 0.0):
            break
        found.append((x, y))
        scores[max(0, y - th // 2) : y + th // 2 + 1, max(0, x - tw // 2) : x + tw // 2 + 1] = -2.0
    return found


def _refine(frame: Frame, template: Template, region: Region, level: int, x: int, y: int) -> tuple[int, int, float]:
    """Follow a candidate (x, y at ``level``, relative to ``region``) down to full resolution."""
    score = -1.0
    for lv in range(level - 1, -1, -1):
        x, y = 2 * x, 2 * y
        image = frame.grey_level(lv)
        scale = 1 << lv
        rx0, ry0 = region.x // scale, region.y // scale
        rx1, ry1 = rx0 + region.width // scale, ry0 + region.height // scale
        th, tw = template.grey[lv].shape
        margin = 2
        wx0, wy0 = max(rx0, rx0 + x - margin), max(ry0, ry0 + y - margin)
        wx1, wy1 = min(rx1, rx0 + x + tw + margin), min(ry1, ry0 + y + th + margin)
        if wx1 - wx0 < tw or wy1 - wy0 < th:
            return x, y, -1.0
        scores = _scores(image[wy0:wy1, wx0:wx1], template, lv)
        _, score, _, (bx, by) = cv2.minMaxLoc(scores)
        x, y = wx0 + bx - rx0, wy0 + by - ry0
    return x, y, float(score)


def _confirm(frame: Frame, template: Template, box: Region, params: MatchParameters) -> tuple[float, float]:
    """(luma, colour) differences (0-1) between patch and reference left after erosion.

    Luma is compared at full resolution after a 3x3 blur (forgives JPEG ringing); colour is
    compared on 4x4 averages, because capture encoders keep colour at a quarter of the luma
    resolution (4:2:0) and smear it across edges, while a logo drawn in another colour differs
    over its whole area. Masked-out pixels are ignored.
    """
    patch = frame.image[box.slices()]
    kernel = np.ones((3, 3), np.uint8)
    grey = cv2.GaussianBlur(cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY), (3, 3), 0)
    luma = cv2.absdiff(grey, template.blurred_grey)
    if template.mask is not None:
        luma = cv2.bitwise_and(luma, template.mask)
    if params.erode_passes > 0:
        luma = cv2.erode(luma, kernel, iterations=params.erode_passes)
    k = template.colour_scale
    small = patch if k == 1 else cv2.resize(patch, template.small_size, interpolation=cv2.INTER_AREA)
    diff = cv2.absdiff(small, template.small)
    b, g, r = cv2.split(diff)
    colour = cv2.max(cv2.max(b, g), r)
    if template.small_mask is not None:
        colour = cv2.bitwise_and(colour, template.small_mask)
    if params.erode_passes > 0 and min(colour.shape) >= 3:
        colour = cv2.erode(colour, kernel, iterations=params.erode_passes)
    return float(luma.max()) / 255.0, float(colour.max()) / 255.0


def _fits(area: Region, template: Template, level: int) -> bool:
    th, tw = template.grey[level].shape
    return area.width >> level > tw and area.height >> level > th


def _params(
    params: MatchParameters | None, match_threshold: float | None, confirm_threshold: float | None
) -> MatchParameters:
    params = params or MatchParameters()
    if match_threshold is None and confirm_threshold is None:
        return params
    return MatchParameters(
        match_threshold if match_threshold is not None else params.match_threshold,
        confirm_threshold if confirm_threshold is not None else params.confirm_threshold,
        params.erode_passes,
        params.candidates,
    )


def _search(
    template: Template, frame: Frame, area: Region, params: MatchParameters, candidates: int, stop_at_first: bool
) -> list[MatchResult]:
    """Judge the best ``candidates`` coarse peaks: refined, thresholded and confirmed in colour.

    With ``stop_at_first`` the search ends at the first confirmed match (results are in coarse
    order; a confirmed one, if any, is last).
    """
    name = template.name
    level = len(template.grey) - 1  # coarsest level where the reference keeps its detail and fits the area
    while level > 0 and not _fits(area, template, level):
        level -= 1
    scale = 1 << level
    image = frame.grey_level(level)
    ax0, ay0 = area.x // scale, area.y // scale
    crop = image[ay0 : ay0 + area.height // scale, ax0 : ax0 + area.width // scale]
    coarse = _scores(crop, template, level)
    th, tw = template.grey[level].shape
    results: list[MatchResult] = []
    for cx, cy in _peaks(coarse, candidates, tw, th):
        coarse_score = float(coarse[cy, cx])
        if results and coarse_score < params.match_threshold - COARSE_MARGIN:
            break  # blurred scores run lower than full-resolution ones, but not by this much
        x, y, score = _refine(frame, template, area, level, cx, cy) if level else (cx, cy, coarse_score)
        box = Region(area.x + x, area.y + y, template.width, template.height)
        details: dict[str, object] = {"reference": name, "coarse_score": coarse_score, "level": level}
        clipped = box.clip(frame.width, frame.height)
        if clipped is None or clipped != box:
            results.append(
                MatchResult("match", False, frame, clipped or box, score, {**details, "why": "off the frame"})
            )
            continue
        if score < params.match_threshold:
            details["why"] = f"grey score {score:.3f} < {params.match_threshold}"
            results.append(MatchResult("match", False, frame, box, score, details))
            continue
        luma, colour = _confirm(frame, template, box, params)
        details["confirm_diff"] = max(luma, colour)
        details["luma_diff"], details["colour_diff"] = luma, colour
        ok = max(luma, colour) <= params.confirm_threshold
        if not ok:
            what = "colour" if colour > params.confirm_threshold else "brightness"
            details["why"] = f"{what} differs by {max(luma, colour):.3f} > {params.confirm_threshold}"
        results.append(MatchResult("match", ok, frame, box, score, details))
        if ok and stop_at_first:
            break
    return results


def _area(template: Template, frame: Frame, region: Region) -> Region | None:
    area = region.clip(frame.width, frame.height)
    if area is None or area.width < template.width or area.height < template.height:
        return None
    return area


def match(
    reference: Template | np.ndarray | str | Path,
    frame: Frame | np.ndarray,
    *,
    region: Region = Region.ALL,
    mask: MaskLike | None = None,
    params: MatchParameters | None = None,
    match_threshold: float | None = None,
    confirm_threshold: float | None = None,
) -> MatchResult:
    """Find ``reference`` in ``frame`` (inside ``region``); truthy when found and confirmed in colour.

    ``reference`` is a file path (a transparent PNG's alpha is its mask), a BGR/BGRA array or a
    :class:`Template`; ``mask`` (in the reference's coordinates: an array of its size with
    non-zero = compare, a :class:`Mask`, or a PNG) overrides the alpha.
    ``match_threshold``/``confirm_threshold`` override ``params``. When several places look
    alike in grey, the first that also confirms in colour wins; a falsy result shows the best
    grey candidate and why it was refused.
    """
    params = _params(params, match_threshold, confirm_threshold)
    template = as_template(reference, mask)
    frame = as_frame(frame)
    area = _area(template, frame, region)
    if area is None:
        details = {"reference": template.name, "why": "region smaller than reference"}
        return MatchResult("match", False, frame, region.clip(frame.width, frame.height), 0.0, details)
    results = _search(template, frame, area, params, params.candidates, stop_at_first=True)
    if not results:
        return MatchResult("match", False, frame, area, 0.0, {"reference": template.name, "why": "no candidate"})
    if results[-1]:
        return results[-1]
    return max(results, key=lambda r: r.score)


def match_all(
    reference: Template | np.ndarray | str | Path,
    frame: Frame | np.ndarray,
    *,
    region: Region = Region.ALL,
    mask: MaskLike | None = None,
    params: MatchParameters | None = None,
    limit: int = 20,
) -> list[MatchResult]:
    """Every place (up to ``limit``) where ``reference`` matches and confirms, top-to-bottom, left-to-right.

    For counting menu items or finding the highlighted one among several. Places that overlap by
    more than half keep the best.
    """
    params = params or MatchParameters()
    template = as_template(reference, mask)
    frame = as_frame(frame)
    area = _area(template, frame, region)
    if area is None:
        return []
    found = [r for r in _search(template, frame, area, params, max(limit * 3, 10), stop_at_first=False) if r]
    kept: list[MatchResult] = []
    for result in sorted(found, key=lambda r: -r.score):
        assert result.region is not None
        overlaps = (k.region.intersect(result.region) for k in kept if k.region is not None)
        if all(o is None or o.area * 2 <= result.region.area for o in overlaps):
            kept.append(result)
        if len(kept) >= limit:
            break
    return sorted(kept, key=lambda r: (r.region.y, r.region.x) if r.region else (0, 0))
