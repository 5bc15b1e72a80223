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
        assert _first_bytes(sshd.port) == b"", "the dropped connection must not get an SSH banner"
        assert box.sessions == []
    finally:
        sshd.close()


def _first_bytes(port: int) -> bytes:
    """What the server sends first; b"" when it closes or resets the connection.

    The reset can arrive while ``create_connection`` is still completing the connect (its socket
    waits non-blocking for the handshake, and the server's RST may be what it reads first when the
    host is busy), or later, on ``recv``: both are the server dropping the connection."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.settimeout(3)
            return s.recv(256)
    except ConnectionResetError:
        return b""
