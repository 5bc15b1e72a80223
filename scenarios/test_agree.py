"""Console and SSH tell the same story: firmware version, serial number and uptime."""

from __future__ import annotations

import time

import pytest

from lab.drivers.ssh import HostKeyError
from lab.errors import DeviceFault, InfraError


@pytest.mark.stb(features=["ssh"])
def test_console_and_ssh_agree(shell, stb):
    console_version = stb.firmware_version(via="console")
    t0 = time.monotonic()
    console_uptime = stb.uptime(via="console")
    try:
        ssh_version = stb.firmware_version(via="ssh")
        ssh_uptime = stb.uptime(via="ssh")
        ssh_serial = stb.diag(via="ssh").get("serial")
    except HostKeyError:
        raise  # a changed host key is the lab's (or an attacker's) business, never "sshd died"
    except InfraError as exc:
        if exc.instrument != "ssh":
            raise
        # SSH failed while the console answers: the box's sshd is the culprit, not the lab. The
        # SSH failure has marked the rig bad, so ask the console driver itself (stb.run would
        # refuse at once), and take the mark back when the box is to blame.
        try:
            console_answers = stb.console.run("true", timeout=10).exit_code == 0
        except DeviceFault:
            stb.health.absolve(stb.rig_name)  # the box crashed (e.g. sshd's segfault on the console)
            raise
        if not console_answers:
            raise
        stb.health.absolve(stb.rig_name)
        raise DeviceFault(f"SSH does not answer while the console does: {exc.message}", symptom="sshd-dead") from exc
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
