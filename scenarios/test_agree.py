"""Console and SSH tell the same story: firmware version, serial number and uptime."""

from __future__ import annotations

import time

import pytest
from ssh_check import over_ssh

from lab.errors import DeviceFault


@pytest.mark.stb(features=["ssh"])
def test_console_and_ssh_agree(shell, stb):
    console_version = stb.firmware_version(via="console")
    t0 = time.monotonic()
    console_uptime = stb.uptime(via="console")
    ssh_version, ssh_uptime, ssh_serial = over_ssh(
        stb,
        lambda: (stb.firmware_version(via="ssh"), stb.uptime(via="ssh"), stb.diag(via="ssh").get("serial")),
    )
    elapsed = time.monotonic() - t0
    if ssh_version != console_version:
        raise DeviceFault(
            f"firmware version differs: console {console_version}, ssh {ssh_version}", symptom="version-mismatch"
        )
    if not (console_uptime - 1.0 <= ssh_uptime <= console_uptime + elapsed + 2.0):
        raise DeviceFault(
            f"uptime differs: console {console_uptime:.1f} s, ssh {ssh_uptime:.1f} s ({elapsed:.1f} s apart)",
            symptom="uptime-mismatch",
        )
    assert ssh_serial == stb.serial_number(), "serial number differs between console and SSH"
