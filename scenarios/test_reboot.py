"""Reboot loop: the box comes back to a shell every time, with a fresh uptime and the same firmware."""

from __future__ import annotations

import pytest

from lab.errors import DeviceFault

REBOOTS = 3
REBOOT_BOUND_S = 45.0


@pytest.mark.stb(features=["reboot"])
def test_reboot_loop(shell, stb, record_measurement):
    version = stb.firmware_version()
    times = []
    for i in range(REBOOTS):
        before = stb.uptime()
        seconds = stb.reboot()
        times.append(seconds)
        if seconds > REBOOT_BOUND_S:
            raise DeviceFault(
                f"reboot {i + 1} took {seconds:.1f} s (bound {REBOOT_BOUND_S:.0f} s)", symptom="slow-reboot"
            )
        after = stb.uptime()
        if after >= before + seconds:
            raise DeviceFault(
                f"uptime did not restart after reboot {i + 1} ({before:.1f} s -> {after:.1f} s)", symptom="no-reboot"
            )
        now = stb.firmware_version()
        if now != version:
            raise DeviceFault(f"firmware changed across reboot {i + 1}: {version} -> {now}", symptom="firmware-changed")
    record_measurement("reboot_seconds_max", f"{max(times):.2f}")
