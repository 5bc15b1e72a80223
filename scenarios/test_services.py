"""Services stay up: a box that has run for a while still answers over SSH (and has not rebooted).

Catches daemons that die some time after boot, which a suite of quick checks right after boot
never sees.
"""

from __future__ import annotations

import time

import pytest
from ssh_check import over_ssh

from lab.errors import DeviceFault

SOAK_UPTIME_S = 30.0


@pytest.mark.stb(features=["ssh"])
def test_ssh_still_answers_after_the_box_has_run_a_while(shell, stb, record_measurement):
    up = stb.uptime(via="console")
    if up < SOAK_UPTIME_S:
        time.sleep(SOAK_UPTIME_S - up)
    after = over_ssh(stb, lambda: stb.uptime(via="ssh"))
    record_measurement("soak_uptime_s", f"{after:.1f}")
    if after < up:
        raise DeviceFault(f"the box rebooted during the soak (uptime {up:.1f} s, then {after:.1f} s)", symptom="reboot")
