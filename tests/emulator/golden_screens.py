"""The golden screens of the emulated box: which states, at which size and time (no OpenCV here).

Used by ``test_golden_screens.py``, also in a subprocess where OpenCV cannot be imported.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from lab.emulator.hdmi import Renderer, logo_image
from lab.emulator.screen import CHANNELS, ScreenState

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
NOW = 1000.0  # monotonic time the screens are rendered at
WALL = 1_700_000_000.0 - NOW  # a fixed wall clock (rendered in UTC), so clocks on screen are stable

#: name -> (width, height, state); times relative to NOW.
SCREENS: dict[str, tuple[int, int, ScreenState]] = {
    "live-ch1-banner": (1280, 720, ScreenState(kind="live", channel=1, banner_until=NOW + 5)),
    "live-ch7-digits-mute": (1280, 720, ScreenState(kind="live", channel=7, digits="12", muted=True)),
    "live-ch3-tuning": (640, 360, ScreenState(kind="live", channel=3, tuning_until=NOW + 1, banner_until=NOW + 5)),
    "home": (640, 360, ScreenState(kind="home", channel=2, menu_index=1)),
    "guide": (640, 360, ScreenState(kind="guide", channel=4, menu_index=5)),
    "settings": (640, 360, ScreenState(kind="settings", menu_index=4, firmware_version="2.1.0", model="STB-4K-X1")),
    "boot": (640, 360, ScreenState(kind="boot", firmware_version="2.0.0", model="STB-4K-X1", boot_progress=0.4)),
    "no-channel": (640, 360, ScreenState(kind="no_channel", channel=9)),
}


def render_all() -> dict[str, np.ndarray]:
    """Every golden screen, rendered now (a fresh renderer per size, fixed clocks)."""
    out = {}
    for name, (w, h, state) in SCREENS.items():
        out[name] = Renderer(w, h, wall_offset=WALL, localtime=time.gmtime).render(state, NOW).copy()
    out["logos"] = np.concatenate([logo_image(ch, 160, 100) for ch in CHANNELS], axis=1)
    return out
