"""Standby and resume: POWER on the remote blanks the picture, POWER again brings live TV back."""

from __future__ import annotations

import pytest

CYCLES = 4


@pytest.mark.stb(features=["ir", "hdmi"])
def test_standby_and_resume(shell, stb, remote, tv):
    """Each resume must give a moving, non-black picture again (not a black screen)."""
    stb.run(f"tune {tv.channels[0]}").check()
    tv.expect_motion(timeout=5)
    for _ in range(CYCLES):
        remote.press("KEY_POWER")
        tv.expect_black(timeout=5)
        remote.press("KEY_POWER")
        tv.expect_picture(timeout=8)
        tv.expect_motion(timeout=5)
    assert stb.run("true").exit_code == 0
