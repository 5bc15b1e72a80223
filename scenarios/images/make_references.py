"""Make the reference images the scenarios match against, for the emulated model STB-4K-X1.

For a real model, save the same crops from a live capture instead
(``cv2.imwrite(path, stb.capture.latest().image[y0:y1, x0:x1])``) and keep the file names.

Each channel gets ``banner-<n>.png`` (the left part of the channel banner: number and name) and
``logo-<n>.png`` (the channel logo in the top-right corner of live TV), cropped from the picture
the emulated box renders at 1280x720. Regions are in ``regions.json`` beside them.

Run: ``python scenarios/images/make_references.py``
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2

from lab.emulator.hdmi import BANNER_BOX, LOGO_BOX, Renderer
from lab.emulator.screen import CHANNELS, ScreenState

OUT = Path(__file__).resolve().parent / "STB-4K-X1"
BANNER_CROP = (BANNER_BOX[0], BANNER_BOX[1], BANNER_BOX[0] + 620, BANNER_BOX[3])


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    renderer = Renderer(1280, 720)
    for ch in CHANNELS:
        state = ScreenState(kind="live", channel=ch.number, banner_until=1e12)
        img = renderer.render(state, 100.0)
        x0, y0, x1, y1 = BANNER_CROP
        cv2.imwrite(str(OUT / f"banner-{ch.number}.png"), img[y0:y1, x0:x1])
        x0, y0, x1, y1 = LOGO_BOX
        cv2.imwrite(str(OUT / f"logo-{ch.number}.png"), img[y0:y1, x0:x1])
    regions = {
        "banner": list(BANNER_BOX),
        "logo": [LOGO_BOX[0] - 20, LOGO_BOX[1] - 20, LOGO_BOX[2] + 20, LOGO_BOX[3] + 20],
        "live_motion": [0, 140, 1280, 420],
        "size": [1280, 720],
        "channels": {str(c.number): c.name for c in CHANNELS},
    }
    (OUT / "regions.json").write_text(json.dumps(regions, indent=2) + "\n")
    print(f"wrote {len(CHANNELS)} banners and logos to {OUT}")


if __name__ == "__main__":
    main()
