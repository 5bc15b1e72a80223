"""The lircd blaster: ``SEND_ONCE`` / ``SEND_START`` / ``SEND_STOP`` over lircd's socket protocol.

See :mod:`lab.drivers.ir` for the driver that picks it from a rig's ``ir.url`` (``lirc://`` or a path).
"""

from __future__ import annotations

import threading
import time

from lab.drivers.ir_socket import LineSocket
from lab.lircd import Remote


class LircdBlaster:
    """The lircd socket protocol (``SEND_ONCE``, ``SEND_START``/``SEND_STOP``) over TCP or a unix socket."""

    def __init__(self, address: tuple[str, int] | str, *, rig_name: str | None = None, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._conn = LineSocket(address, rig_name=rig_name, what="lircd", timeout=timeout)
        self._lock = threading.Lock()

    def command(self, line: str, *, extra_time: float = 0.0) -> list[str]:
        """Send one command; return its DATA lines. InfraError on ERROR (with lircd's message)."""
        with self._lock:
            self._conn.send((line + "\n").encode())
            deadline = time.monotonic() + self.timeout + extra_time
            while True:
                if self._conn.read_line(deadline, b"\n") != "BEGIN":
                    continue  # a decoded-key broadcast line, not a reply
                echo = self._conn.read_line(deadline, b"\n")
                body: list[str] = []
                while True:
                    item = self._conn.read_line(deadline, b"\n")
                    if item == "END":
                        break
                    body.append(item)
                if echo.strip() != line.strip():
                    continue  # e.g. BEGIN/SIGHUP/END broadcast
                return self._result(line, body)

    def _result(self, line: str, body: list[str]) -> list[str]:
        status = body[0] if body else ""
        data: list[str] = []
        if len(body) >= 3 and body[1] == "DATA":
            try:
                n = int(body[2])
            except ValueError:
                n = len(body) - 3
            data = body[3 : 3 + n]
        if status == "SUCCESS":
            return data
        detail = "; ".join(data) if data else "no reason given"
        raise self._conn._err(f"{line!r} failed: {detail}")  # noqa: SLF001

    def send(self, remote: Remote, key: str, *, repeat: int = 0, toggle: int = 0) -> None:
        frames, gaps = remote.frames(key, repeat=repeat)
        duration = (sum(map(sum, frames)) + sum(gaps)) / 1e6
        cmd = f"SEND_ONCE {remote.name} {key}" + (f" {repeat}" if repeat else "")
        self.command(cmd, extra_time=duration)

    def hold(self, remote: Remote, key: str, seconds: float, *, toggle: int = 0) -> None:
        self.command(f"SEND_START {remote.name} {key}")
        try:
            time.sleep(max(0.0, seconds))
        finally:
            self.command(f"SEND_STOP {remote.name} {key}")

    def version(self) -> str:
        data = self.command("VERSION")
        return data[0] if data else ""

    def check(self, remote: Remote) -> str:
        keys = self.list_keys(remote.name)
        missing = [k for k in remote.keys if k not in keys]
        if missing:
            raise self._conn._err(  # noqa: SLF001
                f"lircd's remote {remote.name!r} lacks {len(missing)} key(s) of the rig's remote file "
                f"({', '.join(missing[:5])}): lircd runs another lircd.conf"
            )
        return f"lircd {self.version()} with remote {remote.name} ({len(keys)} keys)"

    def list_keys(self, remote_name: str) -> list[str]:
        """Key names lircd knows for ``remote_name`` (``LIST remote``)."""
        return [line.split()[-1] for line in self.command(f"LIST {remote_name}") if line.strip()]

    def close(self) -> None:
        self._conn.close()
