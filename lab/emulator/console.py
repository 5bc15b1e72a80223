"""The box's UART as a console server: raw TCP (as ser2net serves it) and RFC 2217.

Several clients may connect at once; each sees all console output from the moment it connects;
bytes from any client go to the box's UART (``on_input``). While the box is off the ports stay
open but silent. RFC 2217 uses pyserial's own server-side ``PortManager``, so
``serial.serial_for_url("rfc2217://host:port")`` negotiates baud rate and modem lines as with a
real terminal server.

Example::

    hub = ConsoleHub(on_input=box.uart_rx)
    hub.listen_raw("127.0.0.1", 17001)
    hub.listen_rfc2217("127.0.0.1", 17002)
    hub.write(b"U-Boot 2023.04\\r\\n")
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Callable

import serial.rfc2217 as rfc2217

log = logging.getLogger("stblab.emulator.console")


def _garble(data: bytes) -> bytes:
    """What a UART receiving at the wrong speed makes of bytes: framing errors and 8-bit junk."""
    return bytes((((b * 0x9D) & 0xFF) ^ 0xA5) | 0x80 for b in data)


class _VirtualUart:
    """The serial-port side PortManager configures (baud rate, modem lines); all emulated."""

    def __init__(self) -> None:
        self.baudrate = 115200
        self.bytesize = 8
        self.parity = "N"
        self.stopbits = 1
        self.rtscts = False
        self.xonxoff = False
        self.dtr = True
        self.rts = True
        self.break_condition = False
        self.cts = True
        self.dsr = True
        self.ri = False
        self.cd = True

    def reset_input_buffer(self) -> None:
        pass

    def reset_output_buffer(self) -> None:
        pass


class _Client:
    def __init__(self, sock: socket.socket, rfc: bool) -> None:
        self.sock = sock
        self.rfc = rfc
        self.lock = threading.Lock()
        self.manager: rfc2217.PortManager | None = None
        self.alive = True

    def send_raw(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)

    def send(self, data: bytes) -> None:
        if self.manager is not None:
            data = b"".join(self.manager.escape(data))
        self.send_raw(data)


class _Conn:
    """The ``connection`` PortManager writes telnet negotiation to."""

    def __init__(self, client: _Client) -> None:
        self.client = client

    def write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            self.client.send_raw(data)


class ConsoleHub:
    """Fan-out of UART output to every connected client; fan-in of their input to the box."""

    def __init__(
        self, on_input: Callable[[bytes], None], *, baudrate: int = 115200, strict_baudrate: bool = False
    ) -> None:
        self.on_input = on_input
        # With strict_baudrate, an RFC 2217 client that sets another line speed than the box's
        # UART gets what a real terminal server gives then: garbage both ways.
        self.baudrate = baudrate
        self.strict_baudrate = strict_baudrate
        self._clients: list[_Client] = []
        self._lock = threading.Lock()
        self._listeners: list[socket.socket] = []
        self._closed = False

    @staticmethod
    def bind(host: str, port: int) -> socket.socket:
        """A listening TCP socket (raises OSError with errno EADDRINUSE when taken)."""
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(16)
        except OSError:
            sock.close()
            raise
        return sock

    def listen_raw(self, sock: socket.socket) -> None:
        """Serve raw TCP (ser2net ``raw`` mode) on a bound socket."""
        self._serve(sock, rfc=False)

    def listen_rfc2217(self, sock: socket.socket) -> None:
        """Serve RFC 2217 (telnet COM-PORT option) on a bound socket."""
        self._serve(sock, rfc=True)

    def _serve(self, sock: socket.socket, rfc: bool) -> None:
        self._listeners.append(sock)
        t = threading.Thread(target=self._accept_loop, args=(sock, rfc), name="console-accept", daemon=True)
        t.start()

    def _accept_loop(self, sock: socket.socket, rfc: bool) -> None:
        while not self._closed:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(None)
            # A client that stops reading is dropped after 5 s, not waited for forever.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 5, 0))
            client = _Client(conn, rfc)
            if rfc:
                client.manager = rfc2217.PortManager(_VirtualUart(), _Conn(client))
            with self._lock:
                self._clients.append(client)
            threading.Thread(target=self._read_loop, args=(client,), name="console-client", daemon=True).start()

    def _read_loop(self, client: _Client) -> None:
        sock = client.sock
        try:
            while client.alive:
                try:
                    data = sock.recv(4096)
                except OSError:
                    break
                if not data:
                    break
                if client.manager is not None:
                    data = b"".join(client.manager.filter(data))
                    if data and self._mismatched(client):
                        data = _garble(data)
                if data:
                    try:
                        self.on_input(data)
                    except Exception:  # the box must survive anything a client sends
                        log.exception("console input handler failed")
        finally:
            self._drop(client)

    def _drop(self, client: _Client) -> None:
        client.alive = False
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
        with contextlib.suppress(OSError):
            client.sock.close()

    def write(self, data: bytes) -> None:
        """Send UART output to every client (a stuck client is disconnected)."""
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            try:
                client.send(_garble(data) if self._mismatched(client) else data)
            except OSError:
                self._drop(client)
            except Exception:  # one odd client must never take the UART down
                log.exception("console client write failed")
                self._drop(client)

    def _mismatched(self, client: _Client) -> bool:
        return (
            self.strict_baudrate and client.manager is not None and int(client.manager.serial.baudrate) != self.baudrate
        )

    @property
    def client_count(self) -> int:
        with self._lock:
            return len(self._clients)

    def close(self) -> None:
        """Close listeners and clients."""
        self._closed = True
        for sock in self._listeners:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            self._drop(client)


__all__ = ["ConsoleHub"]
