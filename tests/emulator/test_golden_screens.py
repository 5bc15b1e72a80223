"""The emulated box's screens are pixel-stable: they match golden images whatever OpenCV is installed.

A real box's HDMI output does not change when the lab host upgrades a library; the emulated box's
must not either, or good firmware gets filed as faulty (OpenCV 5.1 drew text differently from
5.0 and a stored channel banner stopped matching). The box draws with numpy only
(``lab.emulator.raster``, glyphs kept in the repository); these tests compare every kind of
screen with ``tests/data/golden/*.png`` and also render them with OpenCV made unimportable.

After an intended change to the box's look, regenerate the golden images and the scenario
references::

    STBLAB_UPDATE_GOLDEN=1 python3 -m pytest tests/emulator/test_golden_screens.py
    python3 scenarios/images/make_references.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from golden_screens import GOLDEN, SCREENS, render_all

from lab.emulator.hdmi import Renderer
from lab.emulator.screen import CHANNELS, ScreenState


def assert_matches_golden(name: str, img: np.ndarray) -> None:
    path = GOLDEN / f"{name}.png"
    if os.environ.get("STBLAB_UPDATE_GOLDEN") == "1":
        cv2.imwrite(str(path), img)
    golden = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert golden is not None, f"no golden image {path}: make it with STBLAB_UPDATE_GOLDEN=1"
    assert golden.shape == img.shape, f"emulator rendering changed: {name} is {img.shape}, golden {golden.shape}"
    diff = np.abs(golden.astype(np.int16) - img.astype(np.int16))
    changed = int(np.count_nonzero(diff.max(axis=2)))
    # Exact on one machine; a float rounding elsewhere may move a glyph's edge pixel by a level or two.
    assert diff.max() <= 2 and changed <= img.shape[0] * img.shape[1] // 1000, (
        f"emulator rendering changed: screen {name!r} differs from {path} in {changed} pixels "
        f"(max {int(diff.max())}, mean {float(diff.mean()):.3f} grey levels). If the box's look was changed on "
        "purpose, regenerate: STBLAB_UPDATE_GOLDEN=1 pytest tests/emulator/test_golden_screens.py, then "
        "python3 scenarios/images/make_references.py"
    )


@pytest.mark.parametrize("name", [*SCREENS, "logos"])
def test_screen_matches_its_golden_image(name: str) -> None:
    assert_matches_golden(name, render_all()[name])


def test_screens_render_the_same_without_opencv(tmp_path: Path) -> None:
    """The box's screens do not depend on OpenCV at all: rendered with ``cv2`` unimportable."""
    out = tmp_path / "screens.npz"
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["cv2"] = None  # any 'import cv2' now raises ImportError
        sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
        import numpy as np
        from golden_screens import render_all
        np.savez({str(out)!r}, **render_all())
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"rendering needed OpenCV:\n{proc.stderr[-2000:]}"
    with np.load(out) as data:
        for name in [*SCREENS, "logos"]:
            assert_matches_golden(name, data[name])


def test_scenario_references_are_the_box_s_own_pictures() -> None:
    """The stored banner and logo references are crops of what the box renders (never stale)."""
    from scenarios.images.make_references import BANNER_CROP, OUT

    renderer = Renderer(1280, 720)
    for ch in CHANNELS:
        img = renderer.render(ScreenState(kind="live", channel=ch.number, banner_until=1e12), 100.0)
        x0, y0, x1, y1 = BANNER_CROP
        ref = cv2.imread(str(OUT / f"banner-{ch.number}.png"), cv2.IMREAD_COLOR)
        diff = np.abs(ref.astype(np.int16) - img[y0:y1, x0:x1].astype(np.int16))
        assert diff.max() <= 2, f"scenario reference banner-{ch.number}.png is stale: run make_references.py"
