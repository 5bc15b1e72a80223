"""What the explorer sees on the HDMI capture: which screen, whether it is black, whether it moves.

A screen is recognised by its *static* part: frames taken a moment apart are reduced to a coarse
grid of mean colours, cells that changed between them (video, a clock) are left out, and what
remains is the screen's signature. Two signatures are the same screen when few of their shared
cells differ. This needs no reference images, so it works on any box; where the model has page
object regions (``scenarios/images/<model>/regions.json``, ``live_motion``), motion is measured
there, so a frozen video under a ticking clock is still seen as frozen.

Example::

    screens = ScreenBook(regions=load_regions("STB-4K-X1"))
    obs = observe(frames, screens)
    print(obs.screen, obs.black, obs.motion)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lab.video.frame import Frame

GRID = (9, 16)  # rows, columns of the coarse signature
CELL_CHANGE = 6.0  # mean grey change of a cell that counts as moving
SAME_SCREEN_CELLS = 0.12  # share of shared cells that may differ within one screen
BLACK_LUMA = 24  # brightest grey value of a black picture
MOTION_LEVEL = 1.0  # mean absolute grey difference in the motion region that counts as moving
TRANSITION_CELLS = 0.15  # share of cells outside the motion region that change when the screen changes
MOVING_AFTER = 2  # looks with motion before a screen counts as one that moves

_IMAGES = Path(__file__).resolve().parents[2] / "scenarios" / "images"


def load_regions(model: str, images: Path | None = None) -> dict[str, list[int]]:
    """The model's page-object regions (``live_motion``, ``banner``...), or {} when it has none."""
    path = (images or _IMAGES) / model / "regions.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, list) and len(v) in (2, 4) and k != "channels"}


def _grey(frame: Frame | np.ndarray) -> np.ndarray:
    img = frame.image if isinstance(frame, Frame) else frame
    if img.ndim == 3:
        img = img.astype(np.float32).mean(axis=2)
    return img.astype(np.float32)


def _cells(grey: np.ndarray) -> np.ndarray:
    rows, cols = GRID
    h, w = grey.shape
    h2, w2 = h - h % rows, w - w % cols
    return grey[:h2, :w2].reshape(rows, h2 // rows, cols, w2 // cols).mean(axis=(1, 3))


@dataclass(frozen=True)
class Signature:
    """A screen's static cells: mean grey per cell, NaN where the picture moves."""

    cells: np.ndarray

    def distance(self, other: Signature) -> float:
        """Share of the cells static in both that differ (0 = the same screen)."""
        both = ~np.isnan(self.cells) & ~np.isnan(other.cells)
        n = int(both.sum())
        if n < 8:
            return 1.0
        diff = np.abs(self.cells[both] - other.cells[both]) > 2 * CELL_CHANGE
        return float(diff.mean())


@dataclass
class ScreenBook:
    """The screens seen so far, each a name (``screen-3``) for a signature, and whether it moved."""

    regions: dict[str, list[int]] = field(default_factory=dict)
    signatures: list[Signature] = field(default_factory=list)
    moving: set[str] = field(default_factory=set)
    motion_seen: dict[str, int] = field(default_factory=dict)
    visits: dict[str, int] = field(default_factory=dict)

    def name(self, sig: Signature) -> tuple[str, bool]:
        """The screen a signature belongs to, and whether it is new."""
        best, best_d = -1, 1.0
        for i, known in enumerate(self.signatures):
            d = sig.distance(known)
            if d < best_d:
                best, best_d = i, d
        if best >= 0 and best_d <= SAME_SCREEN_CELLS:
            name = f"screen-{best + 1}"
            self.visits[name] = self.visits.get(name, 0) + 1
            return name, False
        self.signatures.append(sig)
        name = f"screen-{len(self.signatures)}"
        self.visits[name] = 1
        return name, True


@dataclass(frozen=True)
class Observation:
    """One look at the screen over a short window."""

    screen: str | None  # None: no frames (no signal)
    new_screen: bool
    black: bool
    motion: float  # mean absolute grey change in the motion region between first and last frame
    frames: int
    last: Frame | None


def motion_region(regions: dict[str, list[int]], shape: tuple[int, int]) -> tuple[slice, slice]:
    """Rows and columns where the picture is expected to move (``live_motion``, or all of it)."""
    h, w = shape
    box = regions.get("live_motion")
    size = regions.get("size")
    if not box:
        return slice(0, h), slice(0, w)
    if (h, w) == GRID and size:  # the region in signature cells
        sy, sx = GRID[0] / size[1], GRID[1] / size[0]
        x0, y0, x1, y1 = box
        return slice(int(y0 * sy), max(int(y1 * sy), int(y0 * sy) + 1)), slice(int(x0 * sx), int(x1 * sx))
    sx = w / size[0] if size else 1.0
    sy = h / size[1] if size else 1.0
    x0, y0, x1, y1 = box
    return slice(int(y0 * sy), int(y1 * sy)), slice(int(x0 * sx), int(x1 * sx))


def observe(frames: Sequence[Frame], book: ScreenBook) -> Observation:
    """Name the screen shown in ``frames`` (oldest first) and measure blackness and motion."""
    if not frames:
        return Observation(screen=None, new_screen=False, black=False, motion=0.0, frames=0, last=None)
    first, last = _grey(frames[0]), _grey(frames[-1])
    black = all(float(_grey(f).max()) <= BLACK_LUMA for f in (frames[0], frames[len(frames) // 2], frames[-1]))
    rows, cols = motion_region(book.regions, last.shape)
    motion = float(np.abs(last[rows, cols] - first[rows, cols]).mean())
    c0, c1 = _cells(first), _cells(last)
    changed = np.abs(c1 - c0) > CELL_CHANGE
    cells = np.where(changed, np.nan, c1)
    name, new = book.name(Signature(cells))
    # Motion inside a screen (video under a still frame of menus and banners), not a change of
    # screen during the look: most of the picture outside the motion region stayed as it was.
    outside = np.ones(GRID, bool)
    rows_c, cols_c = motion_region(book.regions, GRID)
    outside[rows_c, cols_c] = False
    transition = outside.any() and float(changed[outside].mean()) > TRANSITION_CELLS
    if motion >= MOTION_LEVEL and not transition:
        book.motion_seen[name] = book.motion_seen.get(name, 0) + 1
        if book.motion_seen[name] >= MOVING_AFTER:
            book.moving.add(name)
    return Observation(screen=name, new_screen=new, black=black, motion=motion, frames=len(frames), last=frames[-1])
