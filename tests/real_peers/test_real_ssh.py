"""The SSH driver against a real OpenSSH sshd on a loopback port with its own host key: commands,
exit codes and stderr, SFTP with checksums, a replaced host key refused, and a command that
times out ended on the box (not left running)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest
from peer_programs import SshdPeer, which

from lab.drivers.ssh import CommandTimeout, HostKeyError, SshClient


def _client(peer: SshdPeer, **kw: object) -> SshClient:
    return SshClient("127.0.0.1", peer.port, "root", peer.client_key, peer.known_hosts, rig_name="real", **kw)  # type: ignore[arg-type]


def _running(pattern: str) -> list[str]:
    """Processes on this machine (sshd runs here) whose command line matches ``pattern``."""
    pgrep = which("pgrep")
    assert pgrep, "pgrep (procps) is needed to look for the remote command"
    out = subprocess.run([pgrep, "-af", pattern], capture_output=True, text=True, timeout=10).stdout  # noqa: S603
    return [line for line in out.splitlines() if "pgrep" not in line]


def _gone(pattern: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while _running(pattern):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_exec_exit_codes_and_stderr(sshd_peer: SshdPeer) -> None:
    with _client(sshd_peer, trust_new_key=True) as ssh:
        r = ssh.run("echo out; echo err >&2; exit 7")
        assert (r.output, r.stderr, r.exit_code) == ("out\n", "err\n", 7)
        assert ssh.run("printf '%s' \"$0\" >/dev/null; echo $((6*7))").output == "42\n"
    with _client(sshd_peer) as ssh:  # the key trusted above is now known: verified, not trusted again
        ssh.kill_mode = "process-group"
        r = ssh.run("echo out; echo err >&2; exit 7")
        assert (r.output, r.stderr, r.exit_code) == ("out\n", "err\n", 7)  # the wrapper's line is not in stderr


def test_sftp_put_and_get_with_checksums(sshd_peer: SshdPeer, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    local = tmp_path / "image.bin"
    local.write_bytes(data)
    remote = str(sshd_peer.folder / "on-box.bin")
    with _client(sshd_peer, trust_new_key=True) as ssh:
        assert ssh.put(local, remote) == hashlib.sha256(data).hexdigest()
        assert ssh.remote_sha256(remote) == hashlib.sha256(data).hexdigest()
        back = tmp_path / "back.bin"
        assert ssh.get(remote, back) == hashlib.sha256(data).hexdigest()
        assert back.read_bytes() == data


def test_a_replaced_host_key_is_refused(sshd_peer: SshdPeer) -> None:
    with _client(sshd_peer, trust_new_key=True) as ssh:
        ssh.run("true")
    sshd_peer.stop()
    sshd_peer.new_host_key()
    sshd_peer.start()
    offered = subprocess.run(  # noqa: S603 - what ssh-keygen -lf prints is what the error names
        [str(which("ssh-keygen")), "-lf", f"{sshd_peer.host_key}.pub"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    with pytest.raises(HostKeyError) as exc:
        _client(sshd_peer, trust_new_key=True).connect()  # trust_new_key never overrides a changed key
    assert offered in str(exc.value) or exc.value.offered == offered


@pytest.mark.parametrize("mode", ["process-group", "signal"])
def test_a_timed_out_command_is_ended_on_the_box(sshd_peer: SshdPeer, mode: str) -> None:
    marker = f"1234.{os.getpid() % 1000}{len(mode)}"
    with _client(sshd_peer, trust_new_key=True) as ssh:
        ssh.kill_mode = mode
        t0 = time.monotonic()
        with pytest.raises(CommandTimeout) as exc:
            ssh.run(f"sh -c 'sleep {marker} & sleep {marker}; echo never'", timeout=1.0)
        assert time.monotonic() - t0 < 8
        if mode == "process-group":
            assert "was ended with SIGTERM" in str(exc.value)
            assert _gone(f"sleep {marker}"), _running(f"sleep {marker}")
        else:
            # OpenSSH delivers signal requests only with privilege separation, which it skips for
            # root: the driver says the command may still run instead of pretending it stopped.
            assert "ignored" in str(exc.value) or "was ended" in str(exc.value)
            for line in _running(f"sleep {marker}"):  # clean up what we started, by pid
                os.kill(int(line.split()[0]), 9)
        assert ssh.run("echo alive").output == "alive\n"  # the connection is still good
