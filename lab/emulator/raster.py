"""Drawing for the emulated box's picture with numpy alone: text, rectangles, discs, polygons.

A real box's HDMI output does not change when the lab host upgrades a library, so the emulated
box must not either: nothing here calls OpenCV. Text comes from glyph atlases kept in the
repository (``fonts/fonts.npz``, made once by ``scripts/make-emulator-font``), scaled by area
averaging; shapes are filled by exact pixel tests (with 4x4 supersampling where anti-aliased).
``tests/emulator/test_golden_screens.py`` compares rendered screens with golden images, so a
change here fails as "emulator rendering changed", never as a device fault.

Coordinates are pixels, ``(x, y)``; colours are BGR tuples; ``img`` is an HxWx3 uint8 array that
is drawn on in place. Example::

    import numpy as np
    from lab.emulator import raster

    img = np.zeros((90, 320, 3), np.uint8)
    raster.text(img, "Channel 1", (10, 60), 1.2, (255, 255, 255))   # org = left end of the baseline
    raster.disc(img, (280, 45), 20, (0, 165, 255))
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

Color = tuple[int, int, int]
_FONTS = Path(__file__).resolve().parent / "fonts"
_SUPER = 4  # supersampling factor per axis for anti-aliased shapes


@functools.cache
def _faces() -> tuple[dict, dict[str, np.ndarray]]:
    meta = json.loads((_FONTS / "fonts.json").read_text(encoding="utf-8"))["faces"]
    with np.load(_FONTS / "fonts.npz") as data:
        atlases = {name: data[name] for name in data.files}
    return meta, atlases


def _weights(n_in: int, n_out: int) -> np.ndarray:
    """Area-averaging matrix (n_out x n_in): output pixel i covers input span [i*s, (i+1)*s)."""
    s = n_in / n_out
    lo = np.arange(n_out)[:, None] * s
    hi = lo + s
    j = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0.0, None)
    return overlap / s


@functools.lru_cache(maxsize=4096)
def _glyph(face: str, ch: str, size: float) -> tuple[np.ndarray, float, float, int]:
    """(alpha uint8 HxW, left offset, advance, baseline) of one glyph drawn at ``size``."""
    meta, atlases = _faces()
    fm = meta[face]
    g = fm["glyphs"].get(ch) or fm["glyphs"]["?"]
    f = size / fm["scale"]
    cell = atlases[face][:, g["x"] : g["x"] + g["width"]].astype(np.float64) / 255.0
    out_h = max(1, round(cell.shape[0] * f))
    out_w = max(1, round(cell.shape[1] * f))
    alpha = _weights(cell.shape[0], out_h) @ cell @ _weights(cell.shape[1], out_w).T
    alpha8 = np.rint(np.clip(alpha, 0.0, 1.0) * 255).astype(np.uint8)
    alpha8.setflags(write=False)
    return alpha8, g["left"] * f, g["advance"] * f, round(fm["baseline"] * f)


def text_width(s: str, size: float, face: str = "duplex") -> int:
    """Width in pixels of ``s`` drawn at ``size`` (the pen's advance)."""
    return round(sum(_glyph(face, ch, size)[2] for ch in s))


def text(img: np.ndarray, s: str, org: tuple[int, int], size: float, color: Color, face: str = "duplex") -> None:
    """Draw ``s`` with its baseline starting at ``org`` (as ``cv2.putText`` places it).

    ``size`` is the font scale (1.0: capitals about 22 px tall); ``face`` is ``duplex`` or ``simplex``.
    """
    pen = float(org[0])
    for ch in s:
        alpha, left, advance, baseline = _glyph(face, ch, size)
        if ch != " ":
            _blend(img, alpha, round(pen - left), org[1] - baseline, color)
        pen += advance


def _blend(img: np.ndarray, alpha: np.ndarray, x: int, y: int, color: Color) -> None:
    h, w = alpha.shape
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(img.shape[1], x + w), min(img.shape[0], y + h)
    if x0 >= x1 or y0 >= y1:
        return
    a = alpha[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.uint16)[..., None]
    region = img[y0:y1, x0:x1]
    col = np.array(color, np.uint16)
    # Integer blend, rounded: (region * (255 - a) + color * a + 127) // 255.
    region[:] = ((region.astype(np.uint16) * (255 - a) + col * a + 127) // 255).astype(np.uint8)


def fill_rect(img: np.ndarray, p0: tuple[int, int], p1: tuple[int, int], color: Color) -> None:
    """Fill the rectangle with corners ``p0`` and ``p1``, both included."""
    x0, x1 = sorted((p0[0], p1[0]))
    y0, y1 = sorted((p0[1], p1[1]))
    img[max(0, y0) : max(0, y1 + 1), max(0, x0) : max(0, x1 + 1)] = color


def rect_outline(img: np.ndarray, p0: tuple[int, int], p1: tuple[int, int], color: Color, thickness: int) -> None:
    """The rectangle's edges, ``thickness`` pixels wide, centred on the edges as OpenCV draws them."""
    x0, x1 = sorted((p0[0], p1[0]))
    y0, y1 = sorted((p0[1], p1[1]))
    lo, hi = thickness // 2, (thickness - 1) // 2
    fill_rect(img, (x0 - lo, y0 - lo), (x1 + hi, y0 + hi), color)
    fill_rect(img, (x0 - lo, y1 - lo), (x1 + hi, y1 + hi), color)
    fill_rect(img, (x0 - lo, y0 - lo), (x0 + hi, y1 + hi), color)
    fill_rect(img, (x1 - lo, y0 - lo), (x1 + hi, y1 + hi), color)


def disc(img: np.ndarray, center: tuple[int, int], radius: float, color: Color, *, antialias: bool = False) -> None:
    """A filled circle; aliased (cheap, for moving parts) or with 4x4 supersampled edges."""
    cx, cy = center
    r = float(radius)
    x0, y0 = max(0, int(cx - r - 1)), max(0, int(cy - r - 1))
    x1, y1 = min(img.shape[1], int(cx + r + 2)), min(img.shape[0], int(cy + r + 2))
    if x0 >= x1 or y0 >= y1:
        return
    if not antialias:
        yy, xx = np.ogrid[y0:y1, x0:x1]
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        img[y0:y1, x0:x1][inside] = color
        return
    yy, xx = _subpixel_grid(x0, y0, x1, y1)
    _cover(img, x0, y0, x1, y1, (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r, color)


def ring(img: np.ndarray, center: tuple[int, int], radius: float, color: Color, thickness: float) -> None:
    """A circle's outline ``thickness`` wide (centred on ``radius``), anti-aliased."""
    cx, cy = center
    outer, inner = radius + thickness / 2, max(0.0, radius - thickness / 2)
    x0, y0 = max(0, int(cx - outer - 1)), max(0, int(cy - outer - 1))
    x1, y1 = min(img.shape[1], int(cx + outer + 2)), min(img.shape[0], int(cy + outer + 2))
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = _subpixel_grid(x0, y0, x1, y1)
    d2 = (xx - cx) ** 2 + (yy - cy) ** 2
    _cover(img, x0, y0, x1, y1, (d2 <= outer * outer) & (d2 >= inner * inner), color)


def polygon(img: np.ndarray, points: Sequence[tuple[float, float]], color: Color) -> None:
    """A filled polygon (even-odd rule, so stars and arrows work), anti-aliased by supersampling."""
    pts = np.asarray(points, np.float64)
    x0, y0 = max(0, int(np.floor(pts[:, 0].min()))), max(0, int(np.floor(pts[:, 1].min())))
    x1 = min(img.shape[1], int(np.ceil(pts[:, 0].max())) + 1)
    y1 = min(img.shape[0], int(np.ceil(pts[:, 1].max())) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = _subpixel_grid(x0, y0, x1, y1)
    inside = np.zeros(np.broadcast_shapes(yy.shape, xx.shape), bool)
    for (ax, ay), (bx, by) in zip(pts, np.roll(pts, -1, axis=0), strict=True):
        if ay == by:
            continue
        crosses = (ay > yy) != (by > yy)
        x_at = ax + (yy - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (xx < x_at)
    _cover(img, x0, y0, x1, y1, inside, color)


def _subpixel_grid(x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample centres of a 4x4 grid in every pixel of [x0, x1) x [y0, y1), pixel centres at integers."""
    offs = (np.arange(_SUPER) + 0.5) / _SUPER - 0.5
    ys = (np.arange(y0, y1)[:, None] + offs[None, :]).reshape(-1, 1)
    xs = (np.arange(x0, x1)[:, None] + offs[None, :]).reshape(1, -1)
    return ys, xs


def _cover(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, inside: np.ndarray, color: Color) -> None:
    h, w = y1 - y0, x1 - x0
    counts = inside.reshape(h, _SUPER, w, _SUPER).sum(axis=(1, 3))
    alpha = (counts * 255 + (_SUPER * _SUPER) // 2) // (_SUPER * _SUPER)
    _blend(img, alpha.astype(np.uint8), x0, y0, color)


__all__ = ["disc", "fill_rect", "polygon", "rect_outline", "ring", "text", "text_width"]
