"""A TCP or unix stream socket read line by line: what the IR blasters' protocols share."""

from __future__ import annotations

import contextlib
import select
import socket
import time

from lab.errors import InfraError


class LineSocket:
    """A TCP or unix stream socket read line by line, with every failure turned into InfraError."""

    def __init__(self, address: tuple[str, int] | str, *, rig_name: str | None, what: str, timeout: float) -> None:
        self.address = address
        self.rig_name = rig_name
        self.what = what
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = b""

    def _err(self, msg: str) -> InfraError:
        return InfraError(f"{self.what} {self._where()}: {msg}", rig=self.rig_name, instrument="ir")

    def _where(self) -> str:
        a = self.address
        return a if isinstance(a, str) else f"{a[0]}:{a[1]}"

    def ensure(self) -> None:
        """Connect if needed; reconnect when the peer has closed an idle connection."""
        if self._sock is not None and self._peer_closed():
            self.close()
        if self._sock is not None:
            return
        sock: socket.socket | None = None
        try:
            if isinstance(self.address, str):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(self.address)
            else:
                sock = socket.create_connection(self.address, timeout=self.timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            if sock is not None:
                sock.close()
            raise self._err(f"cannot connect: {exc.strerror or exc}") from exc
        self._sock = sock
        self._buf = b""

    def _peer_closed(self) -> bool:
        assert self._sock is not None
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
            if not readable:
                return False
            data = self._sock.recv(4096, socket.MSG_PEEK)
            return data == b""
        except OSError:
            return True

    def send(self, data: bytes) -> None:
        self.ensure()
        assert self._sock is not None
        try:
            self._sock.sendall(data)
        except OSError as exc:
            self.close()
            raise self._err(f"connection lost while sending: {exc.strerror or exc}") from exc

    def read_line(self, deadline: float, sep: bytes) -> str:
        """One line (without its separator); InfraError on timeout or a closed connection."""
        assert self._sock is not None
        while True:
            for s in (sep, b"\n") if sep != b"\n" else (sep,):
                pos = self._buf.find(s)
                if pos >= 0:
                    line, self._buf = self._buf[:pos], self._buf[pos + len(s) :]
                    return line.decode("latin-1").strip("\r\n")
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise self._err("no answer (timed out)")
            try:
                self._sock.settimeout(left)
                chunk = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError as exc:
                self.close()
                raise self._err(f"connection lost: {exc.strerror or exc}") from exc
            if not chunk:
                self.close()
                raise self._err("connection closed by the blaster")
            self._buf += chunk
            if len(self._buf) > 1 << 20:
                self.close()
                raise self._err("answer too long without a line end")

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self._buf = b""
