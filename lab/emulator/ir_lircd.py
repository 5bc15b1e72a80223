"""The emulated box's IR path: a lircd socket in front of the IR receiver and emitter.

The parts, each as real hardware has them:

* :class:`IrReceiver`, :class:`IrEmitter` -- the box's IR eye and an IR LED, in :mod:`lab.emulator.ir_signal`
  (importable from here too).
* :class:`LircdServer` -- the lircd socket protocol (TCP ``lirc://host:port`` or a unix socket):
  ``SEND_ONCE REMOTE KEY [COUNT]``, ``SEND_START``/``SEND_STOP``, ``LIST [REMOTE]``, ``VERSION``
  and ``SET_TRANSMITTERS``, replying ``BEGIN/<cmd>/SUCCESS|ERROR/[DATA/n/lines]/END``. As lircd
  does, it encodes the key into timings before driving its LED (flipping the toggle bit of
  RC-5/RC-6 style remotes on every new press); the box decodes those timings.

Example::

    from lab.emulator.ir_lircd import LircdServer

    keys = []
    srv = LircdServer("127.0.0.1", 0, "rigs/remotes/stblab-rc1.lircd.conf", keys.append)
    srv.start()
    # echo "SEND_ONCE STBLAB_RC1 KEY_OK" | nc 127.0.0.1 <srv.port>   -> keys == ["KEY_OK"]
    srv.stop()
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import socketserver
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lab.emulator.ir_signal import (
    FRAME_SPLIT_US,
    IrEmitter,
    IrEvent,
    IrReceiver,
    KeyCallback,
    RemotesArg,
    _Segment,
    as_remotes,
    split_frames,
)
from lab.emulator.service import SocketServerService
from lab.lircd import Remote

log = logging.getLogger(__name__)

#: lircd's default ``--repeat-max``: a SEND_START repeats at most this many frames.
REPEAT_MAX = 600
LIRCD_VERSION = "0.10.2"
MAX_LINE = 4096


class _LircdHandler(socketserver.StreamRequestHandler):
    server: Any
    timeout = 300  # idle clients are dropped after five minutes

    def handle(self) -> None:
        lircd: LircdServer = self.server.lircd
        with contextlib.suppress(OSError):
            self.connection.settimeout(self.timeout)
        with lircd._track(self.connection):
            while not lircd._stopping.is_set():
                try:
                    raw = self.rfile.readline(MAX_LINE + 1)
                except (OSError, ValueError):
                    return
                if not raw:
                    return
                if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
                    # Over-long garbage: skip to the end of this line, answer once.
                    self._send(lircd.reply("", False, ["bad send packet"]))
                    with contextlib.suppress(OSError, ValueError):
                        while True:
                            more = self.rfile.readline(MAX_LINE + 1)
                            if not more or more.endswith(b"\n"):
                                break
                    continue
                text = raw.decode("utf-8", errors="replace").strip("\r\n")
                line = "".join(ch if ch.isprintable() else "?" for ch in text)
                if not line.strip():
                    continue
                try:
                    answer = lircd.handle_command(line, client=self.connection)
                except Exception:  # never let a command take the socket down
                    log.exception("lircd: command %r failed", line)
                    answer = lircd.reply(line, False, ["internal error"])
                if not self._send(answer):
                    return

    def _send(self, text: str) -> bool:
        try:
            self.wfile.write(text.encode("utf-8"))
            self.wfile.flush()
            return True
        except (OSError, ValueError):
            return False


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    lircd: LircdServer


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    block_on_close = False
    lircd: LircdServer


class LircdServer(SocketServerService):
    """A lircd socket whose LED shines on the box's receiver (see module docstring).

    ``remotes`` is lircd's configuration (a lircd.conf path, a Remote or several). The box's
    receiver decodes with ``receiver_remotes`` (default: the same remotes); pass ``receiver`` to
    share one :class:`IrReceiver` with another blaster pointed at the same box. ``port`` 0 picks a
    free port; give ``path`` instead of host/port for a unix socket.
    """

    thread_name = "lircd-server"

    def __init__(
        self,
        host: str | None,
        port: int | None,
        remotes: RemotesArg,
        on_key: KeyCallback | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        receiver: IrReceiver | None = None,
        receiver_remotes: RemotesArg | None = None,
    ) -> None:
        if path is None and (host is None or port is None):
            raise ValueError("LircdServer needs host and port, or a unix socket path")
        super().__init__(host, port or 0)
        self.path = Path(path) if path is not None else None
        self.remotes = as_remotes(remotes)
        self.receiver = receiver or IrReceiver(
            receiver_remotes if receiver_remotes is not None else self.remotes, on_key
        )
        self.emitter: IrEmitter | None = None
        self._repeating: tuple[str, str, _Segment, object] | None = None
        self._toggles: dict[str, int] = {}  # per remote: the toggle bit of the last press

    @classmethod
    def from_url(cls, url: str, remotes: RemotesArg, on_key: KeyCallback | None = None, **kw: Any) -> LircdServer:
        """Build from a rig-style address: ``lirc://host:port`` or a unix socket path."""
        if url.startswith("/"):
            return cls(None, None, remotes, on_key, path=url, **kw)
        p = urlparse(url)
        if p.scheme != "lirc" or not p.hostname or p.port is None:
            raise ValueError(f"not a lircd address: {url!r} (lirc://host:port or /path/to/socket)")
        return cls(p.hostname, p.port, remotes, on_key, **kw)

    # -- lifecycle (see lab.emulator.service) ----------------------------------------------
    def _make_server(self) -> socketserver.BaseServer:
        server: socketserver.BaseServer
        if self.path is not None:
            if self.path.exists() and self.path.is_socket():
                with socket.socket(socket.AF_UNIX) as probe:
                    try:
                        probe.connect(str(self.path))
                    except ConnectionRefusedError:  # a stale socket left by a dead lircd
                        with contextlib.suppress(OSError):
                            self.path.unlink()
                    else:
                        raise OSError(f"lircd socket {self.path} is in use")
            server = _UnixServer(str(self.path), _LircdHandler)
        else:
            server = _TcpServer((self.host or "127.0.0.1", self.requested_port), _LircdHandler)
        server.lircd = self
        return server

    def _on_start(self) -> None:
        self.emitter = IrEmitter(self.receiver, name="lircd")

    def _on_stop(self) -> None:
        if self.emitter is not None:
            self.emitter.close()

    def _after_stop(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()

    @property
    def url(self) -> str:
        """The address as a rig file names it."""
        return str(self.path) if self.path is not None else f"lirc://{self.host}:{self.port}"

    def _client_gone(self, conn: socket.socket) -> None:
        with self._lock:
            rep = self._repeating
            owned = rep is not None and rep[3] is conn
            if owned:
                self._repeating = None
        if owned and rep is not None and self.emitter is not None:
            # As lircd does: a client that goes away does not leave a key held down.
            self.emitter.stop(tag=rep[2].tag)

    # -- protocol ---------------------------------------------------------------------------
    @staticmethod
    def reply(command: str, ok: bool, data: Sequence[str] = ()) -> str:
        """A lircd reply packet: ``BEGIN``, the command, ``SUCCESS``/``ERROR``, optional DATA, ``END``."""
        lines = ["BEGIN", command, "SUCCESS" if ok else "ERROR"]
        if data:
            lines += ["DATA", str(len(data)), *data]
        lines.append("END")
        return "\n".join(lines) + "\n"

    def _remote(self, name: str) -> Remote | None:
        for r in self.remotes:
            if r.name == name:
                return r
        for r in self.remotes:  # lircd matches remote names case-insensitively
            if r.name.lower() == name.lower():
                return r
        return None

    def handle_command(self, line: str, client: object = None) -> str:
        """Answer one command line (without its newline); ``client`` owns a SEND_START it makes."""
        words = line.split()
        directive = words[0].upper() if words else ""
        args = words[1:]
        if directive == "VERSION" and not args:
            return self.reply(line, True, [LIRCD_VERSION])
        if directive == "LIST":
            return self._list(line, args)
        if directive in ("SEND_ONCE", "SEND_START", "SEND_STOP"):
            return self._send(line, directive, args, client)
        if directive == "SET_TRANSMITTERS":
            if not args or not all(a.isdigit() and 1 <= int(a) <= 32 for a in args):
                return self.reply(line, False, ["invalid argument"])
            return self.reply(line, True)
        if directive in ("SIMULATE", "DRV_OPTION", "SET_INPUTLOG"):
            return self.reply(line, False, [f'"{directive}" not supported by this driver'])
        shown = line if len(line) <= 64 else line[:64] + "..."
        return self.reply(line, False, [f'unknown directive: "{shown}"'])

    def _list(self, line: str, args: list[str]) -> str:
        if not args:
            return self.reply(line, True, [r.name for r in self.remotes])
        if len(args) > 1:
            return self.reply(line, False, ["bad send packet"])
        remote = self._remote(args[0])
        if remote is None:
            return self.reply(line, False, [f'unknown remote: "{args[0]}"'])
        rows = []
        for key in remote.keys:
            codes = remote.codes.get(key) or [0]
            rows.append(f"{codes[0]:016x} {key}")
        return self.reply(line, True, rows)

    def _next_toggle(self, remote: Remote) -> int | None:
        """As lircd does for RC-5/RC-6 style remotes: flip the toggle bit on every new press."""
        if not (remote.toggle_bit_mask or remote.toggle_mask):
            return None
        with self._lock:
            value = self._toggles.get(remote.name, 1) ^ 1
            self._toggles[remote.name] = value
        return value

    def _send(self, line: str, directive: str, args: list[str], client: object = None) -> str:
        if len(args) < 2 or len(args) > 3 or (len(args) == 3 and directive != "SEND_ONCE"):
            return self.reply(line, False, ["bad send packet"])
        remote = self._remote(args[0])
        if remote is None:
            return self.reply(line, False, [f'unknown remote: "{args[0]}"'])
        key = args[1]
        if key not in remote:
            return self.reply(line, False, [f'unknown command: "{key}"'])
        count = 0
        if len(args) == 3:
            if not args[2].isdigit() or int(args[2]) > REPEAT_MAX:
                return self.reply(line, False, [f'invalid repeat count: "{args[2]}"'])
            count = int(args[2])
        emitter = self.emitter
        if emitter is None:
            return self.reply(line, False, ["lircd not running"])
        if directive == "SEND_STOP":
            with self._lock:
                rep = self._repeating
                if rep is None or rep[0] != remote.name or rep[1] != key:
                    return self.reply(line, False, ["not repeating"])
                self._repeating = None
            emitter.stop(tag=rep[2].tag)
            rep[2].finished.wait(timeout=2.0)
            return self.reply(line, True)
        with self._lock:
            if self._repeating is not None and not self._repeating[2].finished.is_set():
                return self.reply(line, False, ["busy: repeating"])
            self._repeating = None
        try:
            if directive == "SEND_ONCE":
                toggle = self._next_toggle(remote)
                frames = split_frames(remote.encode(key, repeat=count, toggle=toggle, trailing_gap=True))
            else:
                toggle = self._next_toggle(remote)
                both = split_frames(remote.encode(key, repeat=1, toggle=toggle, trailing_gap=True))
                first, again = both[0], both[-1]
                frames = itertools.chain([first], itertools.repeat(again, REPEAT_MAX))  # type: ignore[assignment]
        except Exception as exc:  # an encoding the remote cannot do
            return self.reply(line, False, [f"cannot send: {exc}"])
        tag = object()
        seg = emitter.play(frames, tag=tag)
        if directive == "SEND_START":
            with self._lock:
                self._repeating = (remote.name, key, seg, client)
            return self.reply(line, True)
        # lircd answers SEND_ONCE once the signal has gone out.
        seg.finished.wait()
        return self.reply(line, seg.completed, [] if seg.completed else ["transmission aborted"])


__all__ = [
    "FRAME_SPLIT_US",
    "IrEmitter",
    "IrEvent",
    "IrReceiver",
    "LircdServer",
    "as_remotes",
    "split_frames",
]
