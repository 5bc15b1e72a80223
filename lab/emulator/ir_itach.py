"""An emulated Global Caché iTach IP2IR: the IR blaster stuck on the box's IR window.

Speaks the iTach TCP API (port 4998 on real units; commands and replies end in ``\\r``):

* ``sendir,M:C,ID,FREQ,REPEAT,OFFSET,ON1,OFF1,...`` -- timings in carrier periods at FREQ Hz.
  The sequence is sent once, then ``REPEAT - 1`` more times from the (1-based, odd) OFFSET, in
  real time; then ``completeir,M:C,ID``. Global Caché compressed IR (repeated on/off pairs
  written as the letters A..O) is accepted too. A sendir with the same ID on the same connection while
  it is still sending extends it (how a held key is sent); anything else on a busy connector
  gets ``busyIR,M:C,ID``.
* ``stopir,M:C`` -> ``stopir,M:C`` (a repeating send stops at the next frame boundary; the send
  it cut short gets no ``completeir``).
* ``getdevices`` -> ``device,0,0 ETHERNET``, ``device,1,3 IR``, ``endlistdevices``;
  ``getversion`` -> the firmware version; ``get_IR,M:C`` -> ``IR,M:C,IR``.
* Errors as the device answers them: ``ERR_M:C,NNN`` (``ERR_0:0,001`` for an unknown command).

The IP2IR has three IR connectors (1:1..1:3); only ``connector`` (default 1:1) is stuck on this
box, so sends on the others complete but the box sees nothing. The box's receiver decodes the
timings with its remote's lircd.conf (:class:`lab.emulator.ir_lircd.IrReceiver`); garbled timings
are ignored as a real receiver ignores noise.

Example::

    from lab.emulator.ir_itach import ItachServer

    srv = ItachServer("127.0.0.1", 0, "rigs/remotes/stblab-rc1.lircd.conf", print)
    srv.start()      # itach://127.0.0.1:<srv.port>/1:1
    srv.stop()
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from lab.emulator.ir_signal import IrEmitter, IrReceiver, KeyCallback, RemotesArg, split_frames
from lab.emulator.service import SocketServerService

log = logging.getLogger(__name__)

ITACH_VERSION = "710-1005-05"
CONNECTORS = (1, 2, 3)
MAX_PAIRS = 260
MAX_LINE = 8192

# iTach API error codes.
ERR_COMMAND = 1
ERR_MODULE = 2
ERR_CONNECTOR = 3
ERR_ID = 4
ERR_FREQ = 5
ERR_REPEAT = 6
ERR_OFFSET = 7
ERR_PULSE_COUNT = 8
ERR_PULSE_DATA = 9
ERR_UNEVEN = 10
ERR_BUFFER_FULL = 15
ERR_SYNTAX = 17
ERR_PAIR_LIMIT = 20
ERR_SYMBOL_BOUNDARY = 21
ERR_SYMBOL_UNDEFINED = 22

_ADDR = re.compile(r"^(\d+):(\d+)$")
_TOKEN = re.compile(r"\d+|[A-Z]|.", re.S)


class ItachError(ValueError):
    """A command the iTach rejects: ``code`` is the iTach error number."""

    def __init__(self, address: str, code: int) -> None:
        super().__init__(f"ERR_{address},{code:03d}")
        self.address = address
        self.code = code

    @property
    def reply(self) -> str:
        return f"ERR_{self.address},{self.code:03d}"


@dataclass(frozen=True)
class SendIr:
    """A parsed ``sendir``: connector, ID, carrier, repeat count, offset and timings (periods)."""

    address: str
    connector: int
    ident: int
    frequency: int
    repeat: int
    offset: int
    periods: tuple[int, ...]

    def microseconds(self) -> list[int]:
        """The full pulse/space sequence as sent, repeats included, in microseconds."""
        seq = list(self.periods) + list(self.periods[self.offset - 1 :]) * (self.repeat - 1)
        return [max(1, round(p * 1_000_000 / self.frequency)) for p in seq]

    def again(self) -> list[int]:
        """The repeated part only (from the offset), in microseconds: what an extension sends."""
        seq = list(self.periods[self.offset - 1 :]) * self.repeat
        return [max(1, round(p * 1_000_000 / self.frequency)) for p in seq]


def _address(text: str, *, ir: bool = True) -> tuple[str, int]:
    m = _ADDR.match(text.strip())
    if not m:
        raise ItachError("0:0", ERR_MODULE)
    module, conn = int(m.group(1)), int(m.group(2))
    address = f"{module}:{conn}"
    if module != 1 if ir else module not in (0, 1):
        raise ItachError(address, ERR_MODULE)
    if ir and conn not in CONNECTORS:
        raise ItachError(address, ERR_CONNECTOR)
    return address, conn


def _int(text: str, address: str, code: int, lo: int, hi: int) -> int:
    t = text.strip()
    if not t.isdigit():
        raise ItachError(address, code)
    v = int(t)
    if not lo <= v <= hi:
        raise ItachError(address, code)
    return v


def _periods(items: list[str], address: str) -> list[int]:
    """On/off counts from the sendir fields, expanding Global Caché compressed IR.

    In compressed form the first 15 distinct on/off pairs are named A..O in order of first
    appearance, and a later pair may be written as its letter, with or without a comma:
    ``96,24,48,24,24,24,48,24BCB`` sends the pairs (96,24) (48,24) (24,24) (48,24) (48,24)
    (24,24) (48,24) -- A = (96,24), B = (48,24), C = (24,24).
    """
    periods: list[int] = []
    table: list[tuple[int, int]] = []
    for item in items:
        text = item.strip()
        if not text:
            raise ItachError(address, ERR_PULSE_DATA)
        for token in _TOKEN.findall(text):
            if token.isdigit():
                value = int(token)
                if not 1 <= value <= 65535:
                    raise ItachError(address, ERR_PULSE_DATA)
                periods.append(value)
                if len(periods) % 2 == 0:
                    pair = (periods[-2], periods[-1])
                    if pair not in table and len(table) < 15:
                        table.append(pair)
            elif token.isalpha() and token.isupper():
                if len(periods) % 2:
                    raise ItachError(address, ERR_SYMBOL_BOUNDARY)
                index = ord(token) - ord("A")
                if index >= len(table):
                    raise ItachError(address, ERR_SYMBOL_UNDEFINED)
                periods.extend(table[index])
            else:
                raise ItachError(address, ERR_PULSE_DATA)
    return periods


def parse_sendir(line: str) -> SendIr:
    """Parse and validate a ``sendir`` line as the iTach does; raises :class:`ItachError`.

    >>> parse_sendir("sendir,1:1,7,38000,1,1,342,171,21,21,21,1520").repeat
    1
    """
    parts = line.split(",")
    if len(parts) < 2:
        raise ItachError("0:0", ERR_SYNTAX)
    address, conn = _address(parts[1])
    if len(parts) < 6:
        raise ItachError(address, ERR_SYNTAX)
    ident = _int(parts[2], address, ERR_ID, 0, 65535)
    freq = _int(parts[3], address, ERR_FREQ, 15000, 500000)
    repeat = _int(parts[4], address, ERR_REPEAT, 1, 50)
    raw = parts[6:]
    if not raw or raw == [""]:
        raise ItachError(address, ERR_PULSE_COUNT)
    periods = _periods(raw, address)
    if len(periods) % 2:
        raise ItachError(address, ERR_UNEVEN)
    if len(periods) // 2 > MAX_PAIRS:
        raise ItachError(address, ERR_PAIR_LIMIT)
    offset = _int(parts[5], address, ERR_OFFSET, 1, 383)
    if offset % 2 == 0 or offset > len(periods):
        raise ItachError(address, ERR_OFFSET)
    return SendIr(address, conn, ident, freq, repeat, offset, tuple(periods))


class _Conn:
    """One client connection: serialised writes (replies and completeir come from two threads)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()

    def send(self, text: str) -> None:
        with self.lock, contextlib.suppress(OSError):
            self.sock.sendall((text + "\r").encode("ascii", errors="replace"))


class _Handler(socketserver.BaseRequestHandler):
    server: Any

    def handle(self) -> None:
        itach: ItachServer = self.server.itach
        sock: socket.socket = self.request
        conn = _Conn(sock)
        with itach._track(sock):
            for line in self._lines(sock, conn, itach):
                try:
                    answer = itach.handle_command(line, conn)
                except Exception:  # garbage never takes the blaster down
                    log.exception("itach: command %r failed", line[:80])
                    answer = f"ERR_0:0,{ERR_SYNTAX:03d}"
                if answer:
                    conn.send(answer)

    @staticmethod
    def _lines(sock: socket.socket, conn: _Conn, itach: ItachServer) -> Iterator[str]:
        buf = b""
        overflow = False
        while not itach._stopping.is_set():
            try:
                data = sock.recv(4096)
            except OSError:
                return
            if not data:
                return
            buf += data
            while True:
                cut = min((i for i in (buf.find(b"\r"), buf.find(b"\n")) if i >= 0), default=-1)
                if cut < 0:
                    break
                line, buf = buf[:cut], buf[cut + 1 :]
                if overflow:  # the tail of an over-long line
                    overflow = False
                    continue
                text = line.decode("latin-1").strip()
                if text:
                    yield text
            if len(buf) > MAX_LINE:
                conn.send(f"ERR_0:0,{ERR_BUFFER_FULL:03d}")
                buf, overflow = b"", True


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class ItachServer(SocketServerService):
    """The emulated iTach (see module docstring).

    ``remote`` is the box's lircd.conf (path or parsed remotes) used by its receiver; pass
    ``receiver`` to share one :class:`IrReceiver` with a lircd endpoint pointed at the same box.
    ``on_key(key)`` is called from the IR thread for each decoded press and held-key repeat.
    """

    thread_name = "itach-server"

    def __init__(
        self,
        host: str,
        port: int,
        remote: RemotesArg | None,
        on_key: KeyCallback | None = None,
        *,
        connector: str = "1:1",
        receiver: IrReceiver | None = None,
    ) -> None:
        if receiver is None:
            if remote is None:
                raise ValueError("ItachServer needs the box's remote or a receiver")
            receiver = IrReceiver(remote, on_key)
        _, self._box_connector = _address(connector)
        super().__init__(host, port)
        self.receiver = receiver
        self.emitters: dict[int, IrEmitter] = {}
        # connector -> (connection, ID, segment) of the send in progress
        self._active: dict[int, tuple[_Conn, int, Any]] = {}

    @classmethod
    def from_url(cls, url: str, remote: RemotesArg, on_key: KeyCallback | None = None, **kw: Any) -> ItachServer:
        """Build from a rig-style URL ``itach://host:port/M:C`` (M:C = the connector on the box)."""
        p = urlparse(url)
        if p.scheme != "itach" or not p.hostname or p.port is None:
            raise ValueError(f"not an iTach URL: {url!r} (itach://host:port/1:1)")
        connector = p.path.strip("/") or "1:1"
        return cls(p.hostname, p.port, remote, on_key, connector=connector, **kw)

    # -- lifecycle (see lab.emulator.service) ----------------------------------------------
    def _make_server(self) -> socketserver.BaseServer:
        server = _TcpServer((self.host or "127.0.0.1", self.requested_port), _Handler)
        server.itach = self  # type: ignore[attr-defined]
        return server

    def _on_start(self) -> None:
        self.emitters = {
            c: IrEmitter(self.receiver if c == self._box_connector else None, name=f"itach-1:{c}") for c in CONNECTORS
        }

    def _on_stop(self) -> None:
        for e in self.emitters.values():
            e.close()

    @property
    def url(self) -> str:
        """The rig-file URL of this blaster's connector on the box."""
        return f"itach://{self.host}:{self.port}/1:{self._box_connector}"

    # -- protocol ---------------------------------------------------------------------------
    def handle_command(self, line: str, conn: _Conn) -> str | None:
        """Answer one command line; None when the answer comes later (``completeir``)."""
        command = line.split(",", 1)[0].strip().lower()
        try:
            if command == "sendir":
                return self._sendir(parse_sendir(line), conn)
            if command == "stopir":
                parts = line.split(",")
                if len(parts) != 2:
                    raise ItachError("0:0", ERR_SYNTAX)
                address, c = _address(parts[1])
                with self._lock:
                    active = self._active.get(c)
                if active is not None:
                    self.emitters[c].stop(tag=active[2].tag)
                return f"stopir,{address}"
            if command == "getdevices" and line.strip().lower() == "getdevices":
                return "device,0,0 ETHERNET\rdevice,1,3 IR\rendlistdevices"
            if command == "getversion":
                return ITACH_VERSION
            if command == "get_ir":
                parts = line.split(",")
                if len(parts) != 2:
                    raise ItachError("0:0", ERR_SYNTAX)
                address, _ = _address(parts[1])
                return f"IR,{address},IR"
            if command == "get_net":
                return f"NET,0:1,LOCKED,STATIC,{self.host},255.0.0.0,0.0.0.0"
        except ItachError as exc:
            return exc.reply
        return f"ERR_0:0,{ERR_COMMAND:03d}"

    def _sendir(self, cmd: SendIr, conn: _Conn) -> str | None:
        emitter = self.emitters.get(cmd.connector)
        if emitter is None:
            return f"ERR_{cmd.address},{ERR_CONNECTOR:03d}"
        with self._lock:
            active = self._active.get(cmd.connector)
            if active is not None and not active[2].finished.is_set() and not active[2].exhausted:
                a_conn, a_id, seg = active
                if a_conn is conn and a_id == cmd.ident:
                    # Same ID again while sending: continue the repeat (key still held); this
                    # sendir is answered when the extended transmission completes.
                    def also_done(completed: bool, cmd: SendIr = cmd) -> None:
                        if completed:
                            conn.send(f"completeir,{cmd.address},{cmd.ident}")

                    if seg.extend(split_frames(cmd.again()), also_done):
                        return None
                else:
                    return f"busyIR,{cmd.address},{cmd.ident}"

            def done(completed: bool, cmd: SendIr = cmd) -> None:
                with self._lock:
                    if self._active.get(cmd.connector, (None, None, None))[2] is seg_box[0]:
                        del self._active[cmd.connector]
                if completed:  # a send cut short by stopir is answered by stopir alone
                    conn.send(f"completeir,{cmd.address},{cmd.ident}")

            seg_box: list[Any] = [None]
            seg = emitter.play(split_frames(cmd.microseconds()), done=done, tag=object())
            seg_box[0] = seg
            self._active[cmd.connector] = (conn, cmd.ident, seg)
        return None


__all__ = ["ITACH_VERSION", "ItachError", "ItachServer", "SendIr", "parse_sendir"]
