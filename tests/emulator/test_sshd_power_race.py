"""A connection accepted just before the box loses power is dropped, not served."""

from __future__ import annotations

import socket

from lab.emulator.console import ConsoleHub
from lab.emulator.provision import ensure_host_key
from lab.emulator.sshd import SshServer


class _Box:
    """Running when sshd accepts the connection, off by the time the session starts."""

    hostname = "stb-x"

    def __init__(self) -> None:
        self.checks = 0
        self.sessions: list[object] = []

    def ssh_allowed(self) -> bool:
        self.checks += 1
        return self.checks == 1

    def register_ssh(self, close):
        self.sessions.append(close)
        return lambda: self.sessions.remove(close)


def test_session_racing_power_off_is_reset_without_a_banner(tmp_path):
    box = _Box()
    host_key = ensure_host_key(tmp_path / "host_key")
    sshd = SshServer(ConsoleHub.bind("127.0.0.1", 0), box, host_key, [])  # type: ignore[arg-type]
    sshd.start()
    try:
        with socket.create_connection(("127.0.0.1", sshd.port), timeout=5) as s:
            s.settimeout(3)
            try:
                got = s.recv(256)
            except ConnectionResetError:
                got = b""
        assert not got.startswith(b"SSH-"), got
        assert box.sessions == []
    finally:
        sshd.close()
