"""SshClient against the emulated STB's real SSH server: commands, SFTP with sha256, host keys, reboot."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import paramiko
import pytest

from lab.drivers.power import PowerSwitch
from lab.drivers.serial import SerialConsole
from lab.drivers.ssh import HostKeyError, SshClient, fingerprint
from lab.errors import InfraError, TestError


@pytest.fixture(scope="module")
def box(emulated: Any) -> Any:
    """stb-a powered on and booted (SSH answers only once the box is up)."""
    rig = emulated.rigs["stb-a"]
    PowerSwitch.from_rig(rig).on()
    with SerialConsole.from_rig(rig) as con:
        con.login(timeout=30)
    return rig


def test_run_and_console_agree(box: Any) -> None:
    with SshClient.from_rig(box) as ssh:
        ssh.wait_for_reconnect(timeout=20)
        fw = ssh.run("fw version")
        assert fw.exit_code == 0 and fw.output.startswith("version=2.0.0 ")
        bad = ssh.run("no-such-tool")
        assert bad.exit_code == 127
        assert ssh.run("false").exit_code == 1
    with SerialConsole.from_rig(box) as con:
        con.login(timeout=10)
        assert con.run("fw version").output == fw.output


def test_sftp_put_get_verified(box: Any, tmp_path: Path) -> None:
    payload = tmp_path / "image.bin"
    payload.write_bytes(os.urandom(300_000))
    with SshClient.from_rig(box) as ssh:
        ssh.wait_for_reconnect(timeout=20)
        digest = ssh.put(payload, "/data/image.bin")
        assert ssh.remote_sha256("/data/image.bin") == digest
        back = tmp_path / "back.bin"
        assert ssh.get("/data/image.bin", back) == digest
        assert back.read_bytes() == payload.read_bytes()
        with pytest.raises(TestError, match="no such file"):
            ssh.get("/data/missing.bin", tmp_path / "missing.bin")
        with pytest.raises(TestError):
            ssh.put(payload, "/no/such/dir/image.bin")
        assert not (tmp_path / "missing.bin").exists() and not list(tmp_path.glob(".*.part"))


def test_get_into_a_missing_local_folder_does_not_blame_the_box(box: Any, tmp_path: Path) -> None:
    with SshClient.from_rig(box) as ssh:
        ssh.wait_for_reconnect(timeout=20)
        ssh.run("echo hi > /tmp/hi.txt").check()
        with pytest.raises(FileNotFoundError, match="local folder"):
            ssh.get("/tmp/hi.txt", tmp_path / "no-such-dir" / "hi.txt")


def test_sftp_over_a_dead_link_is_an_infra_error_not_a_hang(box: Any, tmp_path: Path) -> None:
    from driver_peers import FreezableProxy

    payload = tmp_path / "image.bin"
    payload.write_bytes(os.urandom(200_000))
    proxy = FreezableProxy(box.ssh.port)
    try:
        ssh = SshClient(
            "127.0.0.1", proxy.port, "root", box.ssh.key, tmp_path / "known_hosts", trust_new_key=True, io_timeout=1.0
        )
        with ssh:
            ssh.put(payload, "/data/before.bin")
            proxy.frozen.set()  # the link dies: no FIN, no RST
            t0 = time.monotonic()
            with pytest.raises(InfraError) as err:
                ssh.put(payload, "/data/after.bin")
            assert time.monotonic() - t0 < 10 and err.value.instrument == "ssh"
    finally:
        proxy.frozen.clear()
        proxy.close()


def test_changed_host_key_is_infra_error_naming_both(box: Any, tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    shutil.copyfile(box.ssh.known_hosts, kh)
    real = paramiko.HostKeys(str(kh)).lookup(f"[{box.ssh.host}]:{box.ssh.port}")
    assert real, "the emulator provisions the known_hosts entry"
    real_fp = fingerprint(next(iter(real.values())))
    impostor = paramiko.Ed25519Key.from_private_key_file(str(_key(tmp_path / "impostor")))
    kh.write_text(f"[{box.ssh.host}]:{box.ssh.port} ssh-ed25519 {impostor.get_base64()}\n")
    ssh = SshClient(box.ssh.host, box.ssh.port, "root", box.ssh.key, kh, rig_name="stb-a")
    with pytest.raises(HostKeyError) as err:
        ssh.connect(timeout=10)
    assert real_fp in str(err.value) and fingerprint(impostor) in str(err.value)
    assert err.value.rig == "stb-a" and err.value.instrument == "ssh"


def test_unknown_box_trusted_only_on_request(box: Any, tmp_path: Path) -> None:
    kh = tmp_path / "empty_known_hosts"
    with pytest.raises(HostKeyError, match="not in"):
        SshClient(box.ssh.host, box.ssh.port, "root", box.ssh.key, kh).connect(timeout=10)
    with SshClient(box.ssh.host, box.ssh.port, "root", box.ssh.key, kh, trust_new_key=True) as ssh:
        assert ssh.run("true")
    assert paramiko.HostKeys(str(kh)).lookup(f"[{box.ssh.host}]:{box.ssh.port}")


def test_reboot_then_wait_for_reconnect(box: Any) -> None:
    with SshClient.from_rig(box) as ssh:
        ssh.wait_for_reconnect(timeout=20)
        before = float(ssh.run("cat /proc/uptime").output.split()[0])
        with pytest.raises(InfraError, match="without an exit status"):  # the box drops the session
            ssh.run("reboot; sleep 5", timeout=10)
        ssh.wait_for_reconnect(timeout=30, wait_drop=True)
        after = float(ssh.run("cat /proc/uptime").output.split()[0])
        assert after < before or after < 5


def _key(path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    return path
