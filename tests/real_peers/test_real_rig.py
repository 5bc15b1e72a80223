"""A rig made only of real peers -- ser2net 4 + bash on a pty, OpenSSH sshd, no PDU, no IR, no
capture -- driven by ``Stb`` with the generic-linux profile: the box is reached without power
control, identifies itself from the profile, recovers by rebooting from its shell, and what it
lacks is named (not failed, not silently absent)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from peer_programs import ConsolePeers, SshdPeer, need, start_console

from lab.device import Stb
from lab.errors import InfraError, TestError
from lab.profile import profile_for_rig, unmet
from lab.rig import load_rigs

# Stands in for `reboot` on a box whose shell is this machine's: announce it, then a fresh shell.
FAKE_REBOOT = "echo 'reboot: Restarting system'; exec bash --norc --noprofile -i"


def write_rig(folder: Path, console_url: str, sshd: SshdPeer | None, model: str = "real-linux") -> Path:
    (folder / "models").mkdir(parents=True, exist_ok=True)
    (folder / "models" / "real-linux.yaml").write_text(
        f'model: real-linux\nextends: generic-linux\npower:\n  reboot: "{FAKE_REBOOT}"\n'
    )
    ssh = ""
    if sshd is not None:
        ssh = (
            f"    ssh: {{host: 127.0.0.1, port: {sshd.port}, user: root, key: {sshd.client_key}, "
            f"known_hosts: {sshd.known_hosts}}}\n"
        )
    rig_file = folder / "real.yaml"
    rig_file.write_text(
        f"rigs:\n  - name: real-1\n    model: {model}\n    features: [ssh]\n    serial: {{url: '{console_url}'}}\n{ssh}"
    )
    return rig_file


def _os_release(key: str) -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith(f"{key}="):
            return line.split("=", 1)[1].strip('"')
    return ""


def _expected_serial() -> str:
    """What generic-linux reads as the serial on this machine: the SoC serial, else the machine id."""
    cpu_serial = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("Serial")]
    return cpu_serial[0].split(":", 1)[1].strip() if cpu_serial else Path("/etc/machine-id").read_text().strip()


def test_a_rig_without_pdu_reaches_the_shell_and_identifies_itself(
    console_peers: ConsolePeers, sshd_peer: SshdPeer, tmp_path: Path
) -> None:
    rig = load_rigs(write_rig(tmp_path / "rigs", console_peers.raw_url, sshd_peer))["real-1"]
    with Stb(rig, run_dir=tmp_path / "run", trust_new_ssh_key=True, boot_timeout=20) as stb:
        stb.to("shell")
        assert stb.state == "shell" and stb.profile.model == "real-linux"
        props = stb.report_properties()
        assert not any(v.startswith("unknown") for v in props.values()), props
        assert props["device_serial"] == _expected_serial()
        assert props["firmware_version"] == (_os_release("VERSION_ID") or _os_release("BUILD_ID"))
        assert stb.provenance().values["kernel"] == os.uname().release
        assert stb.firmware_version(via="ssh") == props["firmware_version"]
        diag = stb.diag(via="ssh")
        assert diag["serial"] == props["device_serial"] and diag["os"]["ID"] == _os_release("ID")
        assert float(diag["uptime"]) > 0 and "MemTotal" in diag["memory"]
        assert stb.collect_info()["serial"] == props["device_serial"]
        log = stb.kernel_log(via="ssh")  # the profile's dmesg, kernel lines kept
        assert log.startswith("[") or log == ""


def test_missing_instruments_are_named_not_failed(console_peers: ConsolePeers, tmp_path: Path) -> None:
    rig = load_rigs(write_rig(tmp_path / "rigs", console_peers.raw_url, None))["real-1"]
    profile = profile_for_rig(rig)
    assert unmet(rig, ["power"], profile) == ["power: rig real-1 has no power control (no 'power:' section: no PDU)"]
    assert unmet(rig, ["ir", "hdmi"], profile)[1].startswith("hdmi: rig real-1 has no HDMI capture")
    assert unmet(rig, ["reboot", "console"], profile) == []  # reboot from the profile's shell command
    with Stb(rig, run_dir=tmp_path / "run", boot_timeout=20) as stb:
        stb.to("shell")
        with pytest.raises(TestError, match="no 'power' section.*features=\\['power'\\]"):
            stb.to("off")
        with pytest.raises(TestError, match="no 'ir' section"):
            _ = stb.remote


def test_a_dirty_box_without_pdu_is_rebooted_from_its_shell(console_peers: ConsolePeers, tmp_path: Path) -> None:
    rig = load_rigs(write_rig(tmp_path / "rigs", console_peers.raw_url, None))["real-1"]
    with Stb(rig, run_dir=tmp_path / "run", boot_timeout=20) as stb:
        stb.to("shell")
        pid = stb.run("echo $$").output.strip()
        stb.mark_dirty()
        stb.to("shell")
        assert stb.state == "shell"
        assert stb.run("echo $$").output.strip() == pid  # exec kept the pid: a new shell image
        assert "reboot: Restarting system" in stb.console_log_path.read_text()
        t0 = time.monotonic()
        stb.reboot()  # a soft reboot through the profile, no PDU needed
        assert time.monotonic() - t0 < 20 and stb.run("true").exit_code == 0


def test_a_silent_box_without_pdu_is_an_infra_error_naming_the_rig(tmp_path: Path) -> None:
    need("ser2net", "socat")
    peers = start_console(tmp_path / "silent", program="sleep 600")  # a hung box: the UART says nothing
    try:
        rig = load_rigs(write_rig(tmp_path / "rigs", peers.raw_url, None))["real-1"]
        with Stb(rig, run_dir=tmp_path / "run", boot_timeout=3) as stb:
            with pytest.raises(InfraError, match="no power control and the box does not answer") as exc:
                stb.to("shell")
            assert exc.value.rig == "real-1" and exc.value.instrument == "power"
    finally:
        peers.stop()


def test_provenance_that_cannot_be_read_says_why(console_peers: ConsolePeers, tmp_path: Path) -> None:
    # the emulated model's profile against a real bash: `fw version` does not exist there
    rig = load_rigs(write_rig(tmp_path / "rigs", console_peers.raw_url, None, model="STB-4K-X1"))["real-1"]
    with Stb(rig, run_dir=tmp_path / "run", boot_timeout=20) as stb:
        stb.to("shell")
        props = stb.report_properties()
        assert props["firmware_version"].startswith("unknown (`fw version`: exited 127")
        assert "command not found" in props["firmware_version"]
        assert props["device_serial"].startswith("unknown (`diag --json`: exited 127")
        assert any("firmware_version unknown" in w for w in stb.provenance().warnings())


def test_scenarios_run_on_a_rig_of_real_peers(console_peers: ConsolePeers, sshd_peer: SshdPeer, tmp_path: Path) -> None:
    """`pytest scenarios` with the stblab plugin on this rig: the SSH scenarios pass, and JUnit
    carries the firmware version and serial the generic-linux profile read."""
    import subprocess
    import sys

    from lab.drivers.ssh import SshClient

    rig_file = write_rig(tmp_path / "rigs", console_peers.raw_url, sshd_peer)
    # a lab adds the box's host key to known_hosts once (ssh-keyscan); trust it the same way here
    SshClient(
        "127.0.0.1", sshd_peer.port, "root", sshd_peer.client_key, sshd_peer.known_hosts, trust_new_key=True
    ).connect().close()
    root = Path(__file__).resolve().parents[2]
    junit = tmp_path / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", "scenarios/test_agree.py", "scenarios/test_services.py"]
    cmd += ["--rigs", str(rig_file), "--emulate", "never", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"]
    cmd += ["--run-dir", str(tmp_path / "run"), "--no-file-faults"]
    env = {**os.environ, "PYTHONPATH": str(root)}
    res = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=240, env=env)  # noqa: S603
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "2 passed" in res.stdout
    text = junit.read_text()
    assert f'name="firmware_version" value="{_os_release("VERSION_ID") or _os_release("BUILD_ID")}"' in text
    assert f'name="device_serial" value="{_expected_serial()}"' in text
