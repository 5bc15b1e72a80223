"""The console's connection: opening the port (tty, ``socket://``, ``rfc2217://``), reconnecting
after a drop, closing, and writing to the box."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit, urlunsplit

import serial

from lab.drivers.console.base import ConsoleBase
from lab.errors import InfraError, TestError
from lab.steps import step

INSTRUMENT = "serial"

# What ser2net 4 prints before it closes a connection to a port that already has its client
# (raw/telnet: "Port already in use"; telnet(rfc2217): "Port's device already in use").
_BUSY = re.compile(rb"Port(?:'s device)? already in use|[Dd]evice (?:or resource )?busy|All ports in use")


class ConsoleBusy(InfraError):
    """The console server turned the connection away: another client has the port."""


def _queued_bytes(port: serial.SerialBase) -> bytes:
    """Data bytes pyserial's RFC 2217 reader queued before an open() failed (the server's words)."""
    queue = getattr(port, "_read_buffer", None)
    out = bytearray()
    while queue is not None:
        try:
            item = queue.get_nowait()
        except Exception:
            break
        if item:
            out += item
    return bytes(out)


def _probe_refusal(url: str, timeout: float = 1.5) -> bytes:
    """What a telnet/RFC 2217 console server says to a plain connection (its refusal, if any).

    pyserial's RFC 2217 client dies on the server's closed socket before the refusal text is
    read; after a failed open, one plain TCP connection reads the first bytes the server sends.
    """
    parts = urlsplit(url)
    if not parts.hostname or not parts.port:
        return b""
    out = bytearray()
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            while len(out) < 512:
                chunk = sock.recv(512)
                if not chunk:
                    break
                out += chunk
                if busy_reason(bytes(out)) is not None:
                    break
    except OSError:
        pass
    return bytes(out)


def busy_reason(head: bytes) -> str | None:
    """Why the server turned this connection away, from the first bytes it sent (None: it did not)."""
    m = _BUSY.search(head)
    if m is None:
        return None
    said = m.group(0).decode("ascii", "replace")
    return (
        f"console in use by another client (the console server said {said!r}; ser2net serves one "
        "client a port unless its connection sets max-connections, or kickolduser)"
    )


def _redact_url(url: str) -> str:
    """The URL without a password (pyserial URLs rarely carry one, but never log it)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _keepalive(sock: object) -> None:
    """TCP keepalive on a network console, so a silently dead link (no FIN) shows up as a drop
    within ~11 s instead of looking like a box that stopped printing."""
    if not isinstance(sock, socket.socket):
        return
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 2)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)


def _close_port(port: serial.SerialBase) -> None:
    """Close a port; a socket:// one without waiting (pyserial's close() sleeps 0.3 s after the
    shutdown). A local device closes at once, so its lock is free when this returns."""

    def close() -> None:
        with contextlib.suppress(Exception):
            port.close()

    if type(port).__module__.endswith("protocol_socket"):
        sock = getattr(port, "_socket", None)
        if isinstance(sock, socket.socket):  # the server sees us leave now, not after pyserial's 0.3 s
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        threading.Thread(target=close, name="console-close", daemon=True).start()
    else:
        close()


class PortMixin(ConsoleBase):
    """Connection and writing half of :class:`lab.drivers.console.SerialConsole`."""

    # -- connection ----------------------------------------------------------------------------

    @property
    def log_path(self) -> Path | None:
        """Where the console log is written (None: memory only)."""
        return self.log.path

    @property
    def is_open(self) -> bool:
        return self._state in ("open", "reconnecting")

    @property
    def connected(self) -> bool:
        """True while the port is connected (False while reconnecting, closed or dead)."""
        return self._state == "open"

    def _infra(self, message: str) -> InfraError:
        return InfraError(message, rig=self.rig_name, instrument=INSTRUMENT)

    def _make_port(self) -> serial.SerialBase:
        # A local device is locked (flock) so two sessions never read the same UART; a network
        # console (ser2net, RFC 2217) is meant to be shared.
        exclusive = True if "://" not in self.url else None
        port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0, do_not_open=True, exclusive=exclusive)
        if not type(port).__module__.endswith("rfc2217"):  # pyserial's rfc2217:// refuses a write timeout
            port.write_timeout = self.write_timeout
        # pyserial's open() ends with reset_input_buffer(), which throws away what the box printed
        # between connect and that call (socket:// reads and discards it). Keep every byte.
        port.reset_input_buffer = lambda: None
        try:
            port.open()
        except (serial.SerialException, OSError) as exc:
            # RFC 2217: refused before the negotiation finished (the text queued, or ask once more)
            busy = busy_reason(_queued_bytes(port)) or busy_reason(_probe_refusal(self.url))
            if busy is not None:
                raise ConsoleBusy(busy, rig=self.rig_name, instrument=INSTRUMENT) from exc
            raise
        finally:
            del port.reset_input_buffer
        if self._fd_of(port) is None:
            port.timeout = 0.2
        _keepalive(getattr(port, "_socket", None))
        return port

    @staticmethod
    def _fd_of(port: serial.SerialBase) -> int | None:
        try:
            fd = port.fileno()
        except Exception:
            return None
        return fd if isinstance(fd, int) and fd >= 0 else None

    @step(INSTRUMENT)
    def open(self, timeout: float = 5.0) -> Self:
        """Open the console log, then the port (retrying a refused connection for up to ``timeout`` s)."""
        if self._state in ("open", "reconnecting"):
            return self
        if self._state == "dead":  # reopening after a failure: release the old port and wake pipe first
            self.close()
        self.log.open()
        self.log.note(f"console opened {_redact_url(self.url)}")
        started = time.monotonic()
        deadline = started + timeout
        delay = 0.05
        while True:
            try:
                port = self._make_port()
                break
            except ConsoleBusy as exc:
                if time.monotonic() - started < min(timeout, self.busy_grace):
                    time.sleep(delay)  # our own previous connection may not be gone from the server yet
                    delay = min(delay * 2, 0.5)
                    continue
                self.log.note(f"console open failed: {exc.message}")
                self.log.close()
                raise
            except (serial.SerialException, OSError, ValueError) as exc:
                hint = ""
                if "waiting for option 'control'" in str(exc):  # retrying will not change the answer
                    hint = (
                        " (the RFC 2217 server does not answer SET_CONTROL: a port without modem lines, "
                        "e.g. a USB adapter without DTR/RTS or a pty; add ?ign_set_control to the URL)"
                    )
                if time.monotonic() + delay > deadline or isinstance(exc, ValueError) or hint:
                    self.log.note(f"console open failed: {exc}{hint}")
                    self.log.close()
                    raise self._infra(f"cannot open console {_redact_url(self.url)}: {exc}{hint}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        self._conn_head = bytearray()
        self._conn_bytes = 0
        self._ansi.reset()
        self._opened_at = time.monotonic()
        self._wake_r, self._wake_w = os.pipe()
        self._stop.clear()
        with self._cond:
            self._port = port
            self._state = "open"
            self._dead_reason = ""
            self._last_rx = time.monotonic()
        self._reader = threading.Thread(
            target=self._read_loop, name=f"console-{self.rig_name or self.url}", daemon=True
        )
        self._reader.start()
        return self

    @step(INSTRUMENT)
    def close(self) -> None:
        """Stop the reader, close the port and the log. Safe to call twice."""
        if self._state == "closed":
            return
        self._stop.set()
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=3)
        with self._cond:
            port, self._port = self._port, None
            self._state = "closed"
            self._cond.notify_all()
        if port is not None:
            _close_port(port)
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake_r = self._wake_w = -1
        self.log.note("console closed")
        self.log.close()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection_lost(self, reason: str, *, count: bool = True) -> None:
        """The port failed; ``count=False`` for a refusal retried at once (not a drop a waiter must report)."""
        with self._cond:
            port, self._port = self._port, None
            self._state = "reconnecting"
            self._drops += 1 if count else 0
            self._dead_reason = reason
            self._cond.notify_all()
        if port is not None:
            _close_port(port)
        self.log.note(f"console connection lost: {reason}")

    def _reconnect(self) -> bool:
        last = self._dead_reason
        for delay in self.reconnect_delays:
            if self._stop.wait(delay):
                return False
            try:
                port = self._make_port()
            except ConsoleBusy as exc:
                self._give_up(exc.message)
                return False
            except Exception as exc:
                last = str(exc)
                continue
            self._decoder.reset()
            self._conn_head = bytearray()
            self._conn_bytes = 0
            self._ansi.reset()
            with self._cond:
                if self._stop.is_set():  # closed while we were connecting: nobody owns this port
                    _close_port(port)
                    return False
                self._port = port
                self._state = "open"
                self._cond.notify_all()
            self.log.note(f"console reconnected {_redact_url(self.url)}")
            return True
        self._give_up(f"connection lost and not back after {len(self.reconnect_delays)} attempts: {last}")
        return False

    def _give_up(self, reason: str) -> None:
        """The console is dead for good: every waiting and later call raises ``InfraError`` with ``reason``."""
        with self._cond:
            self._state = "dead"
            self._dead_reason = reason
            self._cond.notify_all()
        self.log.note(f"console gave up: {reason}")

    # -- writing -------------------------------------------------------------------------------

    def _write(self, data: bytes, *, wait: float = 5.0) -> None:
        with self._cond:
            deadline = time.monotonic() + wait
            while self._state == "reconnecting" and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            if self._state == "closed":
                raise TestError(f"console of {self.rig_name or self.url} is not open (call open() first)")
            if self._state != "open" or self._port is None:
                reason = f" ({self._dead_reason})" if self._dead_reason else ""
                raise self._infra(f"cannot write: console is {self._state}{reason}")
            port = self._port
        try:
            with self._write_lock:
                if self.char_delay > 0:
                    for i in range(len(data)):
                        port.write(data[i : i + 1])
                        port.flush()
                        time.sleep(self.char_delay)
                else:
                    port.write(data)
        except Exception as exc:
            raise self._infra(f"write to console failed: {exc}") from exc

    def _encode(self, data: str | bytes) -> bytes:
        return data.encode(self.encoding) if isinstance(data, str) else bytes(data)

    @step(INSTRUMENT)
    def write(self, data: str | bytes) -> None:
        """Send bytes (or text) to the box's UART, ``char_delay`` seconds between characters."""
        self._write(self._encode(data))

    @step(INSTRUMENT)
    def sendline(self, text: str = "") -> None:
        """Send ``text`` followed by the newline (``\\n`` by default)."""
        self._write(self._encode(text + self.newline))
