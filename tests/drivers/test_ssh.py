"""SshClient against a real paramiko SSH server: host key checks, exit codes, timeouts, reconnect."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko
import pytest

from lab.drivers.ssh import CommandTimeout, HostKeyError, SshClient, fingerprint
from lab.errors import DeviceFault, InfraError

if TYPE_CHECKING:
    from driver_peers import SshPeer


def client(peer: SshPeer, **kw: object) -> SshClient:
    return SshClient("127.0.0.1", peer.port, "root", peer.client_key_path, peer.known_hosts, rig_name="rig-s", **kw)


def test_unknown_host_is_refused_without_trust(ssh_peer: SshPeer) -> None:
    with pytest.raises(HostKeyError) as err:
        client(ssh_peer).connect(timeout=5)
    assert err.value.instrument == "ssh" and err.value.rig == "rig-s"
    assert fingerprint(ssh_peer.host_key) in str(err.value)
    assert not ssh_peer.known_hosts.exists()  # nothing trusted behind the user's back


def test_trust_new_key_adds_exactly_that_host(ssh_peer: SshPeer) -> None:
    ssh_peer.known_hosts.write_text(
        "[10.0.0.9]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyOtherKeyOtherKeyOtherKeyOtherKe"
    )
    with client(ssh_peer, trust_new_key=True) as ssh:
        assert ssh.run("out hi").output == "hi\n"
    lines = ssh_peer.known_hosts.read_text().splitlines()
    assert lines[0].startswith("[10.0.0.9]:22 ")  # kept, and the new line did not glue onto it
    assert lines[1] == ssh_peer.known_hosts_line().strip()
    with client(ssh_peer) as ssh:  # known now: no trust needed
        assert ssh.run("exit 0")


def test_known_hosts_that_cannot_be_written_is_a_clear_infra_error(ssh_peer: SshPeer, tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    known = tmp_path / "not-a-dir" / "known_hosts"
    ssh = SshClient("127.0.0.1", ssh_peer.port, "root", ssh_peer.client_key_path, known, trust_new_key=True)
    with pytest.raises(InfraError, match="cannot add the host key to") as err:
        ssh.connect(timeout=5)
    assert err.value.instrument == "ssh" and not ssh.connected
    end = time.monotonic() + 3
    while ssh_peer.transports[-1].is_active() and time.monotonic() < end:
        time.sleep(0.05)
    assert not ssh_peer.transports[-1].is_active()  # the half-open connection was closed, not leaked


def test_changed_host_key_names_both_fingerprints(ssh_peer: SshPeer, tmp_path: Path) -> None:
    old = paramiko.Ed25519Key.from_private_key_file(str(_other_key(tmp_path)))
    ssh_peer.known_hosts.write_text(ssh_peer.known_hosts_line(old))
    with pytest.raises(HostKeyError) as err:
        client(ssh_peer, trust_new_key=True).connect(timeout=5)  # trust never overrides a mismatch
    msg = str(err.value)
    assert "MISMATCH" in msg and fingerprint(ssh_peer.host_key) in msg and fingerprint(old) in msg
    assert isinstance(err.value, InfraError) and not isinstance(err.value, DeviceFault)
    assert ssh_peer.known_hosts.read_text() == ssh_peer.known_hosts_line(old)


def test_hashed_known_hosts_entry_is_understood(ssh_peer: SshPeer) -> None:
    hashed = paramiko.HostKeys.hash_host(f"[127.0.0.1]:{ssh_peer.port}")
    key = ssh_peer.host_key
    ssh_peer.known_hosts.write_text(f"{hashed} {key.get_name()} {key.get_base64()}\n")
    with client(ssh_peer) as ssh:
        assert ssh.run("out ok").output == "ok\n"


def test_run_gives_stdout_stderr_and_exit_code(ssh_peer: SshPeer) -> None:
    ssh_peer.known_hosts.write_text(ssh_peer.known_hosts_line())
    with client(ssh_peer) as ssh:
        r = ssh.run("out hello; err warning; exit 3")
        assert (r.output, r.stderr, r.exit_code) == ("hello\n", "warning\n", 3)
        assert not r
        r = ssh.run("frob")
        assert r.exit_code == 127 and "not found" in r.stderr


def test_command_that_hangs_is_a_device_fault_not_infra(ssh_peer: SshPeer) -> None:
    ssh_peer.known_hosts.write_text(ssh_peer.known_hosts_line())
    with client(ssh_peer) as ssh:
        t0 = time.monotonic()
        with pytest.raises(CommandTimeout) as err:
            ssh.run("out started; sleep 5", timeout=0.5)
        assert time.monotonic() - t0 < 3
        assert "started" in (err.value.excerpt or "")
        assert ssh.run("out still usable").exit_code == 0


def test_refused_connection_is_infra_error(tmp_path: Path, ssh_peer: SshPeer) -> None:
    ssh_peer.stop()
    with pytest.raises(InfraError) as err:
        client(ssh_peer).connect(timeout=2)
    assert err.value.instrument == "ssh" and "cannot connect" in str(err.value)


def test_wrong_lab_key_is_infra_error(tmp_path: Path, ssh_peer: SshPeer) -> None:
    ssh_peer.known_hosts.write_text(ssh_peer.known_hosts_line())
    other = _other_key(tmp_path)
    ssh = SshClient("127.0.0.1", ssh_peer.port, "root", other, ssh_peer.known_hosts, rig_name="rig-s")
    with pytest.raises(InfraError, match="refused"):
        ssh.connect(timeout=5)


def test_dropped_connection_then_wait_for_reconnect(ssh_peer: SshPeer) -> None:
    ssh_peer.known_hosts.write_text(ssh_peer.known_hosts_line())
    with client(ssh_peer) as ssh:
        assert ssh.run("exit 0")
        ssh_peer.kill_connections()
        time.sleep(0.2)
        with pytest.raises(InfraError):
            ssh.run("out x")
        ssh.wait_for_reconnect(timeout=10)
        assert ssh.run("out back").output == "back\n"


def test_wait_for_reconnect_is_bounded(ssh_peer: SshPeer) -> None:
    ssh_peer.known_hosts.write_text(ssh_peer.known_hosts_line())
    ssh = client(ssh_peer)
    ssh_peer.stop()
    t0 = time.monotonic()
    with pytest.raises(InfraError, match="within 1 s"):
        ssh.wait_for_reconnect(timeout=1.0)
    assert time.monotonic() - t0 < 4


def test_key_material_never_logged(ssh_peer: SshPeer, caplog: pytest.LogCaptureFixture) -> None:
    ssh_peer.known_hosts.write_text(ssh_peer.known_hosts_line())
    caplog.set_level(logging.DEBUG)
    with client(ssh_peer) as ssh:
        ssh.run("out x")
    secret = ssh_peer.client_key_path.read_text().splitlines()[1]
    assert secret not in caplog.text
    assert "ssh.connect" in caplog.text  # the steps were logged


def test_encrypted_key_without_passphrase(tmp_path: Path, ssh_peer: SshPeer) -> None:
    ssh_peer.known_hosts.write_text(ssh_peer.known_hosts_line())
    from cryptography.hazmat.primitives import serialization

    enc = tmp_path / "enc_key"
    private = serialization.load_ssh_private_key(ssh_peer.client_key_path.read_bytes(), None)
    enc.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.BestAvailableEncryption(b"pp"),
        )
    )
    with pytest.raises(InfraError, match="no passphrase"):
        SshClient("127.0.0.1", ssh_peer.port, "root", enc, ssh_peer.known_hosts).connect(timeout=5)
    with SshClient("127.0.0.1", ssh_peer.port, "root", enc, ssh_peer.known_hosts, passphrase="pp") as ssh:
        assert ssh.run("exit 0")


def _other_key(tmp_path: Path) -> Path:
    from driver_peers import _new_ed25519

    return _new_ed25519(tmp_path / "other_key")


def test_link_black_hole_during_a_command_is_infra_not_the_box(ssh_peer: SshPeer) -> None:
    from driver_peers import FreezableProxy

    proxy = FreezableProxy(ssh_peer.port)
    try:
        # the proxy port differs from the server's: trust it explicitly for this host:port
        ssh = SshClient("127.0.0.1", proxy.port, "root", ssh_peer.client_key_path, ssh_peer.known_hosts)
        ssh.trust_new_key = True
        with ssh:
            assert ssh.run("out ok").exit_code == 0
            import threading

            threading.Timer(0.3, proxy.frozen.set).start()  # the link dies while the command runs
            with pytest.raises(InfraError, match="unresponsive") as err:
                ssh.run("sleep 3", timeout=1.0)
            assert not isinstance(err.value, DeviceFault)
            with pytest.raises(InfraError):  # and reconnecting over the dead link is the lab's problem too
                ssh.connect(timeout=1.0)
    finally:
        proxy.frozen.clear()
        proxy.close()


def test_server_that_never_speaks_is_infra_error_within_timeout(ssh_peer: SshPeer) -> None:
    import socket

    silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog) but never sends a banner
    try:
        port = silent.getsockname()[1]
        ssh = SshClient("127.0.0.1", port, "root", ssh_peer.client_key_path, ssh_peer.known_hosts, rig_name="rig-s")
        t0 = time.monotonic()
        with pytest.raises(InfraError, match="handshake"):
            ssh.connect(timeout=1.0)
        assert time.monotonic() - t0 < 4
    finally:
        silent.close()
