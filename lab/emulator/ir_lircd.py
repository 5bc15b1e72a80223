"""The emulated box's IR path: receiver, emitter, and a lircd socket in front of them.

Three parts, each as real hardware has them:

* :class:`IrReceiver` -- the box's IR eye. It decodes pulse/space timings with the remote's
  protocol from its lircd.conf (:mod:`lab.lircd`) and calls ``on_key(key)`` for each press, and
  again for auto-repeats while a key is held (after ``repeat_delay``, as Linux rc-core does).
  Timings that do not decode are noise: ignored, counted, and they end a held key.
* :class:`IrEmitter` -- an IR LED: plays frames in real time (a NEC press takes ~110 ms) and
  hands each frame to the receiver it points at (or to nobody, for an emitter not stuck on a box).
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

import collections
import contextlib
import itertools
import logging
import os
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lab.lircd import Remote, load_remotes

log = logging.getLogger(__name__)

KeyCallback = Callable[[str], None]
RemotesArg = Remote | Sequence[Remote] | str | os.PathLike[str]

#: A space this long (µs) or longer ends a frame when a signal is played out frame by frame.
FRAME_SPLIT_US = 15_000
#: Silence assumed after a signal that ends on a pulse (µs).
DEFAULT_TAIL_US = 20_000
#: lircd's default ``--repeat-max``: a SEND_START repeats at most this many frames.
REPEAT_MAX = 600
LIRCD_VERSION = "0.10.2"
MAX_LINE = 4096


def as_remotes(remotes: RemotesArg) -> list[Remote]:
    """A list of remotes from a Remote, a sequence of them, or a lircd.conf path."""
    if isinstance(remotes, Remote):
        return [remotes]
    if isinstance(remotes, str | os.PathLike):
        return load_remotes(Path(remotes))
    found = list(remotes)
    if not found:
        raise ValueError("at least one remote is needed")
    return found


def split_frames(timings: Sequence[int]) -> list[tuple[list[int], int]]:
    """Split a pulse/space list into ``(marks, gap_us)`` frames at long spaces.

    ``marks`` starts and ends with a pulse; ``gap_us`` is the silence after it.

    >>> split_frames([9000, 4500, 560, 40000, 9000, 2250, 560])
    [([9000, 4500, 560], 40000), ([9000, 2250, 560], 20000)]
    """
    frames: list[tuple[list[int], int]] = []
    cur: list[int] = []
    for i, v in enumerate(timings):
        if i % 2 == 1 and v >= FRAME_SPLIT_US:
            if cur:
                frames.append((cur, int(v)))
            cur = []
        else:
            cur.append(int(v))
    if cur:
        if len(cur) % 2 == 0:  # ends on a (short) space: that is the tail
            frames.append((cur[:-1], max(cur[-1], DEFAULT_TAIL_US)))
        else:
            frames.append((cur, DEFAULT_TAIL_US))
    return frames


@dataclass(frozen=True)
class IrEvent:
    """One key event the receiver produced: ``repeat`` is True for a held-key auto-repeat."""

    time: float
    key: str
    remote: str
    repeat: bool


class IrReceiver:
    """The box's IR receiver: timings -> key presses (see module docstring).

    ``repeat_delay`` is how long a key must be held before auto-repeat starts, ``repeat_period``
    the minimum time between auto-repeats. Thread-safe: several emitters may shine on it.
    """

    def __init__(
        self,
        remotes: RemotesArg,
        on_key: KeyCallback | None = None,
        *,
        repeat_delay: float = 0.5,
        repeat_period: float = 0.1,
        hold_timeout: float = 0.2,
    ) -> None:
        self.remotes = as_remotes(remotes)
        self.on_key = on_key
        self.repeat_delay = repeat_delay
        self.repeat_period = repeat_period
        self.hold_timeout = hold_timeout
        self.events: collections.deque[IrEvent] = collections.deque(maxlen=256)
        self.frames = 0  # frames seen
        self.noise = 0  # frames that decoded to nothing
        self._lock = threading.RLock()
        self._held: tuple[Remote, str, int | None] | None = None
        self._held_since = 0.0
        self._last_seen = -1e9
        self._last_emit = 0.0

    def keys(self) -> list[str]:
        """Keys received so far (oldest first, auto-repeats included), from :attr:`events`."""
        return [e.key for e in self.events]

    def receive(self, timings: Sequence[int], start: float | None = None) -> list[str]:
        """Decode a burst of timings (one or more frames) that began at monotonic ``start``.

        Returns the keys emitted (presses and auto-repeats), in order.
        """
        t = time.monotonic() if start is None else start
        emitted: list[str] = []
        for marks, gap in split_frames(timings):
            emitted += self.frame(marks, t)
            t += (sum(marks) + gap) / 1e6
        return emitted

    def frame(self, marks: Sequence[int], start: float) -> list[str]:
        """Decode one frame (pulses and spaces, no trailing gap) that began at ``start``."""
        with self._lock:
            self.frames += 1
            end = start + sum(marks) / 1e6
            held_recent = self._held is not None and start - self._last_seen <= self.hold_timeout
            if not held_recent:
                self._held = None
            for remote in self._candidates():
                try:
                    found = remote.decode_all(marks)
                except Exception:  # a decoder bug must not blind the box
                    log.exception("ir: decoding with remote %s failed", remote.name)
                    continue
                if not found:
                    continue
                out = self._apply(remote, found, start, end)
                if out is not None:
                    return out
            self.noise += 1
            self._held = None  # noise breaks a held key, as on a real receiver
            return []

    def _candidates(self) -> list[Remote]:
        if self._held is None:
            return self.remotes
        held_remote = self._held[0]
        return [held_remote] + [r for r in self.remotes if r is not held_remote]

    def _apply(self, remote: Remote, found: list[Any], start: float, end: float) -> list[str] | None:
        emitted: list[str] = []
        useful = False
        for d in found:
            if d.key is None:  # repeat frame(s): the held key continues
                if self._held is None or self._held[0] is not remote:
                    continue
                useful = True
                emitted += self._repeats(d.repeats, end)
                continue
            useful = True
            same = self._held is not None and self._held[0] is remote and self._held[1] == d.key
            if same and not remote.has_repeat_code and (d.toggle is None or d.toggle == self._held[2]):
                # Remotes without a repeat code (RC-5, many others) resend the full frame while held.
                emitted += self._repeats(1 + d.repeats, end)
                continue
            self._held = (remote, d.key, d.toggle)
            self._held_since = start
            self._last_emit = start
            emitted.append(self._emit(remote, d.key, start, repeat=False))
            if d.repeats:
                emitted += self._repeats(d.repeats, end)
        if not useful:
            return None
        self._last_seen = end
        return emitted

    def _repeats(self, count: int, at: float) -> list[str]:
        assert self._held is not None
        remote, key, _ = self._held
        out: list[str] = []
        for _ in range(count):
            if at - self._held_since >= self.repeat_delay and at - self._last_emit >= self.repeat_period * 0.8:
                self._last_emit = at
                out.append(self._emit(remote, key, at, repeat=True))
        return out

    def _emit(self, remote: Remote, key: str, at: float, *, repeat: bool) -> str:
        self.events.append(IrEvent(at, key, remote.name, repeat))
        if self.on_key is not None:
            try:
                self.on_key(key)
            except Exception:  # the box's handler failing must not kill the IR path
                log.exception("ir: on_key(%s) failed", key)
        return key


class _Segment:
    """Frames queued on an emitter, with callbacks for when they are done (or aborted)."""

    def __init__(self, frames: Iterator[tuple[list[int], int]], done: Callable[[bool], None] | None, tag: object):
        self.frames = frames
        self.callbacks: list[Callable[[bool], None]] = [done] if done is not None else []
        self.tag = tag
        self.stop_requested = False
        self.exhausted = False
        self.finished = threading.Event()
        self.completed = False
        self._lock = threading.Lock()

    def next_frame(self) -> tuple[list[int], int] | None:
        """The next frame to send, or None when the segment is exhausted."""
        with self._lock:
            frame = next(self.frames, None)
            if frame is None:
                self.exhausted = True
            return frame

    def extend(self, frames: Iterable[tuple[list[int], int]], done: Callable[[bool], None] | None = None) -> bool:
        """Append frames while the segment plays; False (nothing appended) once it has run out."""
        with self._lock:
            if self.exhausted or self.stop_requested:
                return False
            self.frames = itertools.chain(self.frames, frames)
            if done is not None:
                self.callbacks.append(done)
            return True

    def finish(self, completed: bool) -> None:
        """Mark done and run the callbacks (once)."""
        if self.finished.is_set():
            return
        self.completed = completed
        self.finished.set()
        for cb in self.callbacks:
            try:
                cb(completed)
            except Exception:
                log.exception("ir: completion callback failed")


class IrEmitter:
    """An IR LED that plays frames in real time towards a receiver (or into the room).

    Segments play one after the other; :meth:`stop` aborts the playing segment at the next frame
    boundary (as iTach ``stopir`` and lircd ``SEND_STOP`` do).
    """

    def __init__(self, receiver: IrReceiver | None, name: str = "ir") -> None:
        self.receiver = receiver
        self.name = name
        self._cond = threading.Condition()
        self._queue: collections.deque[_Segment] = collections.deque()
        self._current: _Segment | None = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ir-emitter-{name}", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> _Segment | None:
        """The segment playing or queued first (None when idle)."""
        with self._cond:
            return self._current or (self._queue[0] if self._queue else None)

    def play(
        self,
        frames: Iterable[tuple[list[int], int]],
        done: Callable[[bool], None] | None = None,
        tag: object = None,
    ) -> _Segment:
        """Queue frames; ``done(completed)`` is called when they have been sent or were stopped."""
        seg = _Segment(iter(frames), done, tag)
        with self._cond:
            if self._closed.is_set():
                raise RuntimeError("emitter closed")
            self._queue.append(seg)
            self._cond.notify_all()
        return seg

    def stop(self, tag: object = None) -> bool:
        """Abort the playing segment (only if its tag matches, when given) and queued ones."""
        with self._cond:
            stopped = False
            for seg in [self._current, *self._queue]:
                if seg is not None and (tag is None or seg.tag == tag):
                    seg.stop_requested = True
                    stopped = True
            self._cond.notify_all()
            return stopped

    def close(self) -> None:
        """Stop playing and end the emitter's thread."""
        self._closed.set()
        self.stop()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while not self._closed.is_set():
            with self._cond:
                while not self._queue and not self._closed.is_set():
                    self._cond.wait()
                if self._closed.is_set():
                    break
                seg = self._current = self._queue.popleft()
            completed = self._play(seg)
            with self._cond:
                self._current = None
            seg.finish(completed)
        with self._cond:
            leftovers = list(self._queue)
            self._queue.clear()
        for seg in leftovers:
            seg.finish(False)

    def _play(self, seg: _Segment) -> bool:
        t = time.monotonic()
        first = True
        while True:
            if seg.stop_requested or self._closed.is_set():
                return False
            frame = seg.next_frame()
            if frame is None:
                return True  # the silence after the last frame needs no waiting
            marks, gap = frame
            if not first and self._sleep_until(t, seg):  # the gap before this frame
                return False
            first = False
            # Signal time, not wall time: an emulator starved of CPU delivers late but keeps the
            # signal's own timing, so hold and repeat decisions do not depend on machine load.
            start = t
            t = start + sum(marks) / 1e6
            if self._sleep_until(t, seg):
                return False
            if self.receiver is not None:
                self.receiver.frame(marks, start)
            t += gap / 1e6

    def _sleep_until(self, t: float, seg: _Segment) -> bool:
        """Sleep until monotonic ``t``; True when the segment was stopped meanwhile."""
        while True:
            left = t - time.monotonic()
            if left <= 0:
                return seg.stop_requested or self._closed.is_set()
            with self._cond:
                if seg.stop_requested or self._closed.is_set():
                    return True
                self._cond.wait(left)


# --------------------------------------------------------------------------- lircd socket


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


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    block_on_close = False


class LircdServer:
    """A lircd socket whose LED shines on the box's receiver (see module docstring).

    ``remotes`` is lircd's configuration (a lircd.conf path, a Remote or several). The box's
    receiver decodes with ``receiver_remotes`` (default: the same remotes); pass ``receiver`` to
    share one :class:`IrReceiver` with another blaster pointed at the same box. ``port`` 0 picks a
    free port; give ``path`` instead of host/port for a unix socket.
    """

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
        self.host = host
        self.path = Path(path) if path is not None else None
        self._requested_port = port or 0
        self.remotes = as_remotes(remotes)
        self.receiver = receiver or IrReceiver(
            receiver_remotes if receiver_remotes is not None else self.remotes, on_key
        )
        self.emitter: IrEmitter | None = None
        self._server: socketserver.BaseServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
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

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Bind (``OSError`` when the port or path is in use) and start serving."""
        if self._server is not None:
            raise RuntimeError("LircdServer already started")
        self._stopping.clear()
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
            server = _TcpServer((self.host or "127.0.0.1", self._requested_port), _LircdHandler)
        server.lircd = self  # type: ignore[attr-defined]
        self._server = server
        self.emitter = IrEmitter(self.receiver, name="lircd")
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="lircd-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop repeating, close client connections and release the port or socket file."""
        if self._server is None:
            return
        self._stopping.set()
        if self.emitter is not None:
            self.emitter.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
        self._server = None

    def __enter__(self) -> LircdServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`; 0 for a unix socket)."""
        if self._server is None or self.path is not None:
            return self._requested_port
        return int(self._server.server_address[1])  # type: ignore[index]

    @property
    def url(self) -> str:
        """The address as a rig file names it."""
        return str(self.path) if self.path is not None else f"lirc://{self.host}:{self.port}"

    @contextlib.contextmanager
    def _track(self, conn: socket.socket) -> Iterator[None]:
        with self._lock:
            self._conns.add(conn)
        try:
            yield
        finally:
            with self._lock:
                self._conns.discard(conn)
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
