"""SSH on the emulated box through paramiko: host key verification, exec, shell, SFTP, refusal."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat

import paramiko
import pytest
from emu_helpers import FAST_BOOT, boot_to_shell, pdu, ssh_client, ssh_run, wait_ssh
from support import eventually

from lab.emulator.testing import EmulatedLab, write_rig_file


def test_provisioned_keys_are_private_and_known_hosts_has_the_box(lab, rig):
    key = rig.ssh.key
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert (key.parent / (key.name + ".pub")).read_text().startswith("ssh-ed25519 ")
    hosts = paramiko.HostKeys(str(rig.ssh.known_hosts))
    assert hosts.lookup(f"[127.0.0.1]:{rig.ssh.port}") is not None
    vendor = rig.ssh.key.parent / "vendor_ed25519"
    assert vendor.exists() and (vendor.parent / "vendor_ed25519.pub").exists()


def test_exec_commands_with_exit_status_and_interactive_shell(rig):
    boot_to_shell(rig).close()
    client = wait_ssh(rig)
    try:
        assert ssh_run(client, "fw version")[0] == 0
        assert ssh_run(client, "fw version")[1].startswith("version=2.0.0 ")
        assert ssh_run(client, "false") == (1, "")
        status, out = ssh_run(client, "nosuch")
        assert status == 127 and "nosuch: not found" in out
        assert ssh_run(client, "uname -a")[1].startswith("Linux stb-a 5.15.104-stb")
        chan = client.invoke_shell()
        chan.settimeout(5)
        got = b""
        chan.send(b"echo hello-shell\r")
        while b"hello-shell\r\nroot@stb-a:~# " not in got:
            got += chan.recv(4096)
        chan.send(b"exit\r")
        chan.close()
    finally:
        client.close()


def test_sftp_upload_lands_in_tmp_and_matches_sha256(rig, tmp_path):
    boot_to_shell(rig).close()
    client = wait_ssh(rig)
    try:
        payload = os.urandom(300_000)
        local = tmp_path / "blob.bin"
        local.write_bytes(payload)
        sftp = client.open_sftp()
        sftp.put(str(local), "/tmp/blob.bin")
        assert sftp.stat("/tmp/blob.bin").st_size == len(payload)
        assert "blob.bin" in sftp.listdir("/tmp")
        with pytest.raises(OSError):
            sftp.put(str(local), "/usr/bin/evil")  # read-only root filesystem
        back = tmp_path / "back.bin"
        sftp.get("/tmp/blob.bin", str(back))
        assert back.read_bytes() == payload
        sftp.close()
        status, out = ssh_run(client, "sha256sum /tmp/blob.bin")
        assert status == 0 and out.split()[0] == hashlib.sha256(payload).hexdigest()
        assert ssh_run(client, "rm /tmp/blob.bin")[0] == 0
        assert ssh_run(client, "ls /tmp")[1].split() == []
    finally:
        client.close()


def test_wrong_client_key_is_refused(rig, tmp_path):
    boot_to_shell(rig).close()
    wait_ssh(rig).close()
    other = tmp_path / "other_key"
    paramiko.Ed25519Key  # noqa: B018 - the class exists; make an unrelated key with cryptography
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    other.write_bytes(pem)
    with pytest.raises(paramiko.AuthenticationException):
        ssh_client(rig, key=other)


def test_ssh_refused_while_off_and_dropped_on_power_off(rig):
    pdu(rig, 0)
    with pytest.raises((paramiko.SSHException, OSError, EOFError)):
        ssh_client(rig, timeout=2)
    boot_to_shell(rig).close()
    client = wait_ssh(rig)
    transport = client.get_transport()
    assert transport is not None and transport.is_active()
    pdu(rig, 0)
    eventually(lambda: not transport.is_active(), timeout=5, what="power off dropping the SSH session")
    client.close()


def test_garbage_on_the_ssh_port_is_survived(rig):
    con = boot_to_shell(rig)
    wait_ssh(rig).close()
    for junk in (b"\x00\xff" * 500, b"GET / HTTP/1.0\r\n\r\n", b"SSH-2.0-bogus\r\n" + os.urandom(4000)):
        s = socket.create_connection((rig.ssh.host, rig.ssh.port), timeout=5)
        try:
            s.sendall(junk)
            s.settimeout(0.5)
            try:
                while s.recv(4096):
                    pass
            except (TimeoutError, ConnectionResetError):
                pass
        finally:
            s.close()
    client = wait_ssh(rig)
    assert ssh_run(client, "true")[0] == 0
    client.close()
    assert con.run("echo alive").strip() == "alive"
    con.close()


def test_host_key_persists_across_restart_and_a_changed_key_is_detected(tmp_path):
    rig_file = write_rig_file(tmp_path, ("stb-k",), boot=FAST_BOOT, power_on_at_start=True)
    with EmulatedLab(rig_file) as lab:
        rig = lab.rigs["stb-k"]
        client = wait_ssh(rig)
        first = client.get_transport().get_remote_server_key().get_base64()
        assert ssh_run(client, "echo kept > /data/marker")[0] == 0
        boots = json.loads(ssh_run(client, "diag --json")[1])["boots"]
        client.close()
    known_before = rig.ssh.known_hosts.read_text()
    with EmulatedLab(rig_file) as lab:
        client = wait_ssh(rig)  # RejectPolicy + known_hosts: same key or it fails
        assert client.get_transport().get_remote_server_key().get_base64() == first
        assert ssh_run(client, "cat /data/marker")[1] == "kept\n", "the same device comes back"
        assert json.loads(ssh_run(client, "diag --json")[1])["boots"] == boots + 1
        client.close()
    assert rig.ssh.known_hosts.read_text() == known_before, "known_hosts must not be rewritten"
    # A different device (state folder wiped -> new host key) on the same address must be detected.
    (tmp_path / "state" / "stb-k" / "ssh_host_ed25519_key").unlink()
    with EmulatedLab(rig_file) as lab:
        assert rig.ssh.known_hosts.read_text() == known_before, "an existing entry is never overwritten"
        with pytest.raises(paramiko.BadHostKeyException):
            wait_ssh(rig, timeout=8)
