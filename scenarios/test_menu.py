"""Menu number entry: typing a channel number in the home menu must never take the box down."""

from __future__ import annotations

import time

import pytest

from lab.errors import DeviceFault

SETTLE_S = 3


@pytest.mark.stb(features=["ir"])
def test_menu_number_entry_keeps_the_box_running(shell, stb, remote):
    """MENU, a number that is no channel (99), OK: the box shows its own screen and keeps running."""
    before = stb.uptime()
    t0 = time.monotonic()
    for key in ("KEY_MENU", "KEY_9", "KEY_9", "KEY_OK"):
        remote.press(key)
    # Keep a call waiting on the console while the box handles the entry: a crash raises its
    # DeviceFault here the moment it shows, instead of in whichever test runs next.
    stb.run(f"sleep {SETTLE_S}", timeout=SETTLE_S + 10)
    after = stb.uptime()
    if after < before + (time.monotonic() - t0) - 2.0:
        raise DeviceFault(
            f"the box rebooted during menu number entry (uptime {before:.1f} -> {after:.1f} s)",
            symptom="unexpected-reboot",
        )
    remote.press("KEY_EXIT")
