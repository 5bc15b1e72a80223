"""What the explorer sees on the HDMI capture: which screen, whether it is black, whether it moves.

A screen is recognised by its *static* part: frames taken a moment apart are reduced to a coarse
grid of mean colours, cells that changed between them (video, a clock) are left out, and what
remains is the screen's signature. Two signatures are the same screen when few of their shared
cells differ. What the moving cells showed is kept too (an envelope per cell), so a still picture
is called a frozen frame of a moving screen only when it looks like one. This needs no reference
images, so it works on any box; where the model has page object regions
(``scenarios/images/<model>/regions.json``, ``live_motion``), motion is measured there, so a
frozen video under a ticking clock is still seen as frozen.

Example::

    screens = ScreenBook(regions=load_regions("STB-4K-X1"))
    obs = observe(frames, screens)
    print(obs.screen, obs.black, obs.motion)
"""

from __future__ import annotations

import json
import math
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
MOVING_AFTER = 1  # looks with motion (in both halves, no change of screen) before a screen counts as moving
ENVELOPE_MARGIN = 12.0  # mean colour a still motion-region cell may lie outside what it showed moving
ENVELOPE_SHARE = 0.75  # share of motion-region cells that must lie within it for a frozen frame

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
        import cv2  # a tenth of the time numpy's mean over the colour axis takes on a 720p frame

        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.dtype == np.uint8 else img.astype(np.float32).mean(axis=2)
    return img.astype(np.float32)


def max_grey(frame: Frame) -> float:
    """The brightest grey value of a frame (a picture at most :data:`BLACK_LUMA` is black)."""
    img = frame.image
    if img.ndim == 3 and img.dtype == np.uint8:
        import cv2

        return float(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).max())
    return float(_grey(frame).max())


def _cells(img: np.ndarray) -> np.ndarray:
    """Mean colour (or grey) per cell of the :data:`GRID`: rows x columns (x channels)."""
    import cv2

    rows, cols = GRID
    return cv2.resize(img, (cols, rows), interpolation=cv2.INTER_AREA).astype(np.float32)


def _changed(c0: np.ndarray, c1: np.ndarray, level: float) -> np.ndarray:
    """Cells whose mean (any colour channel) differs by more than ``level``."""
    diff = np.abs(c1 - c0) > level
    return diff.any(axis=-1) if diff.ndim == 3 else diff


@dataclass(frozen=True)
class Signature:
    """A screen's static cells: mean colour per cell, NaN where the picture moves."""

    cells: np.ndarray

    def _static(self) -> np.ndarray:
        nan = np.isnan(self.cells)
        return ~(nan.any(axis=-1) if nan.ndim == 3 else nan)

    def distance(self, other: Signature) -> float:
        """Share of the cells static in both that differ (0 = the same screen)."""
        both = self._static() & other._static()
        n = int(both.sum())
        if n < 8:
            return 1.0
        diff = _changed(self.cells[both], other.cells[both], 2 * CELL_CHANGE)
        return float(diff.mean())


@dataclass
class ScreenBook:
    """The screens seen so far, each a name (``screen-3``) for a signature, and whether it moved."""

    regions: dict[str, list[int]] = field(default_factory=dict)
    signatures: list[Signature] = field(default_factory=list)
    moving: set[str] = field(default_factory=set)
    motion_seen: dict[str, int] = field(default_factory=dict)
    visits: dict[str, int] = field(default_factory=dict)
    # per screen, the lowest and highest mean colour each motion-region cell has shown
    envelope: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def widen(self, name: str, *region_cells: np.ndarray) -> None:
        """Let the motion region of ``name`` have looked like ``region_cells``."""
        lo, hi = self.envelope.get(name, (region_cells[0], region_cells[0]))
        for cells in region_cells:
            lo, hi = np.minimum(lo, cells), np.maximum(hi, cells)
        self.envelope[name] = (lo, hi)

    def fits(self, name: str, region_cells: np.ndarray) -> bool:
        """Whether a still picture's motion region looks like what moved there on ``name`` before
        (most cells within what they showed while moving): a frozen frame of that screen, not
        another still screen whose static part resembles it."""
        if name not in self.envelope:
            return False
        lo, hi = self.envelope[name]
        inside = np.asarray((region_cells >= lo - ENVELOPE_MARGIN) & (region_cells <= hi + ENVELOPE_MARGIN))
        per_cell = inside.all(axis=-1) if inside.ndim == 3 else inside
        return float(per_cell.mean()) >= ENVELOPE_SHARE

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

    screen: str | None  # None: no frames (no signal); CHANGING: the screen changed during the look
    new_screen: bool
    black: bool
    motion: float  # mean absolute grey change in the motion region, the smaller of the look's two halves
    frames: int
    last: Frame | None
    transition: bool = False  # the picture outside the motion region changed during the look
    cells: np.ndarray | None = None  # the last frame's mean colour per GRID cell


#: the screen name of a look during which the screen changed (not named, not learned)
CHANGING = "(changing)"


def motion_region(regions: dict[str, list[int]], shape: tuple[int, int]) -> tuple[slice, slice]:
    """Rows and columns where the picture is expected to move (``live_motion``, or all of it)."""
    h, w = shape
    box = regions.get("live_motion")
    size = regions.get("size")
    if not box:
        return slice(0, h), slice(0, w)
    if (h, w) == GRID and size:  # the region in signature cells: every cell it touches
        sy, sx = GRID[0] / size[1], GRID[1] / size[0]
        x0, y0, x1, y1 = box
        r0, c0 = int(y0 * sy), int(x0 * sx)
        return slice(r0, max(math.ceil(y1 * sy), r0 + 1)), slice(c0, max(math.ceil(x1 * sx), c0 + 1))
    sx = w / size[0] if size else 1.0
    sy = h / size[1] if size else 1.0
    x0, y0, x1, y1 = box
    return slice(int(y0 * sy), int(y1 * sy)), slice(int(x0 * sx), int(x1 * sx))


def observe(frames: Sequence[Frame], book: ScreenBook, *, settled_only: bool = False) -> Observation:
    """Name the screen shown in ``frames`` (oldest first) and measure blackness and motion.

    ``settled_only``: a look during which the screen changed is returned as :data:`CHANGING`
    without naming or learning it (the caller looks again once the screen has settled).
    """
    if not frames:
        return Observation(screen=None, new_screen=False, black=False, motion=0.0, frames=0, last=None)
    first, mid, last = _grey(frames[0]), _grey(frames[len(frames) // 2]), _grey(frames[-1])
    black = all(max_grey(f) <= BLACK_LUMA for f in (frames[0], frames[len(frames) // 2], frames[-1]))
    rows, cols = motion_region(book.regions, last.shape)
    # Video moves all the time: both halves of the look must show motion. A single change in the
    # region (a channel's "no signal" box replacing the black of tuning) is not a moving picture.
    motion = min(
        float(np.abs(mid[rows, cols] - first[rows, cols]).mean()),
        float(np.abs(last[rows, cols] - mid[rows, cols]).mean()),
    )
    c0, cm, c1 = (_cells(f.image) for f in (frames[0], frames[len(frames) // 2], frames[-1]))
    changed = _changed(c0, c1, CELL_CHANGE)
    # Motion inside a screen (video under a still frame of menus and banners), not a change of
    # screen during the look: most of the picture outside the motion region stayed as it was.
    outside = np.ones(GRID, bool)
    rows_c, cols_c = motion_region(book.regions, GRID)
    outside[rows_c, cols_c] = False
    transition = bool(outside.any() and float(changed[outside].mean()) > TRANSITION_CELLS)
    if transition and settled_only:
        return Observation(CHANGING, False, black, motion, len(frames), frames[-1], transition=True, cells=c1)
    cells = np.where(changed[..., None] if c1.ndim == 3 else changed, np.nan, c1)
    name, new = book.name(Signature(cells))
    if motion >= MOTION_LEVEL and not transition:
        book.widen(name, c0[rows_c, cols_c], cm[rows_c, cols_c], c1[rows_c, cols_c])
        book.motion_seen[name] = book.motion_seen.get(name, 0) + 1
        if book.motion_seen[name] >= MOVING_AFTER:
            book.moving.add(name)
    return Observation(
        screen=name,
        new_screen=new,
        black=black,
        motion=motion,
        frames=len(frames),
        last=frames[-1],
        transition=transition,
        cells=c1,
    )
