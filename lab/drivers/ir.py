"""IR remote: press keys on a box through an IR blaster, as a person with the remote would.

The blaster is chosen by the rig's ``ir.url``:

* ``itach://host:port/M:C`` -- a Global Caché iTach (TCP API, port 4998). Keys are encoded here
  with the remote's lircd.conf (:mod:`lab.lircd`) into pulse/space timings, converted to carrier
  periods at the remote's frequency and sent as ``sendir``; the driver waits for ``completeir``.
  ``busyIR`` is waited out; ``ERR_...`` replies are instrument errors.
* ``lirc://host:port`` or a unix socket path (``/var/run/lirc/lircd``) -- a lircd daemon that
  drives the LED itself: ``SEND_ONCE``, ``SEND_START``/``SEND_STOP``, replies parsed from
  ``BEGIN ... SUCCESS|ERROR ... END``.

Key names are checked against the remote file before anything is sent: an unknown key is a
:class:`~lab.errors.TestError` listing the nearest names. A blaster that cannot be reached, drops
the connection or answers with an error is an :class:`~lab.errors.InfraError` (instrument ``ir``).
Every public action is a logged step (:mod:`lab.steps`).

Example::

    remote = IrRemote.from_rig(rig)
    remote.press("KEY_CHANNELUP")
    remote.press_many(["KEY_1", "KEY_0", "KEY_OK"])
    remote.hold("KEY_VOLUMEUP", 1.5)
    n = remote.press_until("KEY_DOWN", lambda: menu_item_selected("Settings"), max_presses=10)
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lab.errors import DeviceFault, InfraError, TestError
from lab.lircd import LircdError, Remote, UnknownKeyError, load_remotes, pick_remote
from lab.protocols import Blaster
from lab.steps import step

__all__ = ["IrRemote", "ItachBlaster", "LircdBlaster", "ITACH_ERRORS"]

#: Global Caché iTach API error codes (``ERR_M:C,NNN``), from the iTach API specification.
ITACH_ERRORS = {
    "001": "invalid command (command not found)",
    "002": "invalid module address (does not exist)",
    "003": "invalid connector address (does not exist)",
    "004": "invalid ID value",
    "005": "invalid frequency value",
    "006": "invalid repeat value",
    "007": "invalid offset value",
    "008": "invalid pulse count",
    "009": "invalid pulse data",
    "010": "uneven amount of on/off statements",
    "011": "no carriage return found",
    "012": "repeat count exceeded",
    "013": "IR command sent to input connector",
    "014": "blaster command sent to non-blaster connector",
    "015": "no carriage return before buffer full",
    "016": "no carriage return",
    "017": "bad command syntax",
    "018": "sensor command sent to non-input connector",
    "019": "repeated IR transmission failure",
    "020": "above designated IR on/off pair limit",
    "021": "symbol odd boundary",
    "022": "undefined symbol",
    "023": "unknown option",
    "024": "invalid baud rate setting",
    "025": "invalid flow control setting",
    "026": "invalid parity setting",
    "027": "settings are locked",
}
#: The iTach accepts at most this many repeats in one ``sendir``, and this many on/off pairs.
ITACH_MAX_REPEAT = 50
ITACH_MAX_PAIRS = 260


# ----------------------------------------------------------------------------------- socket helper


class _LineSocket:
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


# ----------------------------------------------------------------------------------- iTach


class ItachBlaster:
    """Global Caché iTach TCP API (``sendir`` / ``completeir``) on one module:connector."""

    def __init__(
        self,
        host: str,
        port: int = 4998,
        module: int = 1,
        connector: int = 1,
        *,
        rig_name: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.addr = f"{module}:{connector}"
        self.timeout = timeout
        self._conn = _LineSocket((host, port), rig_name=rig_name, what="iTach", timeout=timeout)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @staticmethod
    def to_periods(timings_us: Sequence[int], frequency: int) -> list[int]:
        """Microseconds -> carrier periods at ``frequency`` Hz (at least 1 each).

        >>> ItachBlaster.to_periods([9000, 4500], 38000)
        [342, 171]
        """
        return [max(1, round(t * frequency / 1_000_000)) for t in timings_us]

    def sendir_commands(self, remote: Remote, key: str, *, repeat: int, toggle: int) -> list[tuple[int, str]]:
        """The ``sendir`` lines (without ID) that send one press with ``repeat`` repeat frames.

        Returns ``(expected_duration_us, "FREQ,REPEAT,OFFSET,on,off,...")`` per command: the first
        holds the full frame then (for held keys) a repeat frame the iTach replays from its offset.
        """
        frames, gaps = remote.frames(key, repeat=repeat, toggle=toggle)
        freq = remote.frequency or 38000
        first = _with_gap(frames[0], gaps[0])
        out: list[tuple[int, str]] = []
        if len(frames) == 1:
            out.append((sum(first), self._body(freq, 1, 1, first)))
            return out
        rep = _with_gap(frames[1], gaps[-1] if len(frames) == 2 else gaps[1])
        left = len(frames) - 1
        count = min(left, ITACH_MAX_REPEAT)
        out.append((sum(first) + count * sum(rep), self._body(freq, count, len(first) + 1, first + rep)))
        left -= count
        while left > 0:
            count = min(left, ITACH_MAX_REPEAT)
            out.append((count * sum(rep), self._body(freq, count, 1, rep)))
            left -= count
        return out

    @staticmethod
    def _body(freq: int, repeat: int, offset: int, timings: list[int]) -> str:
        periods = ItachBlaster.to_periods(timings, freq)
        if len(periods) > 2 * ITACH_MAX_PAIRS:
            raise TestError(
                f"IR signal of {len(periods) // 2} on/off pairs is longer than an iTach sendir takes "
                f"({ITACH_MAX_PAIRS}); send fewer repeats in one press"
            )
        return f"{freq},{repeat},{offset}," + ",".join(str(p) for p in periods)

    def send(self, remote: Remote, key: str, *, repeat: int = 0, toggle: int = 0) -> None:
        for duration_us, body in self.sendir_commands(remote, key, repeat=repeat, toggle=toggle):
            self._sendir(body, duration_us / 1e6)

    def hold(self, remote: Remote, key: str, seconds: float, *, toggle: int = 0) -> None:
        frames, gaps = remote.frames(key, repeat=1, toggle=toggle)
        period_us = sum(frames[1]) + gaps[-1]
        first_us = sum(frames[0]) + gaps[0]
        repeats = max(0, math.ceil((seconds * 1e6 - first_us) / period_us))
        self.send(remote, key, repeat=repeats, toggle=toggle)

    def _sendir(self, body: str, duration: float) -> None:
        with self._lock:
            deadline = time.monotonic() + duration + self.timeout
            while True:
                cmd_id = next(self._ids) % 65536
                self._conn.send(f"sendir,{self.addr},{cmd_id},{body}\r".encode())
                reply = self._await(cmd_id, deadline)
                if reply == "busy":
                    if time.monotonic() > deadline:
                        raise self._conn._err("stayed busy (busyIR) until the timeout")  # noqa: SLF001
                    time.sleep(0.05)
                    continue
                return

    def _await(self, cmd_id: int, deadline: float) -> str:
        while True:
            line = self._conn.read_line(deadline, b"\r").strip()
            if not line:
                continue
            low = line.lower()
            if low.startswith("completeir"):
                parts = line.split(",")
                if len(parts) >= 3 and parts[2].strip() != str(cmd_id):
                    continue  # the completion of an earlier command that timed out
                return "ok"
            if low.startswith("busyir"):
                return "busy"
            if line.startswith("ERR") or low.startswith("unknowncommand"):
                code = line.rsplit(",", 1)[-1].strip() if "," in line else line.rsplit("_", 1)[-1]
                meaning = ITACH_ERRORS.get(code.zfill(3)[-3:], "")
                raise self._conn._err(f"rejected sendir: {line}" + (f" ({meaning})" if meaning else ""))  # noqa: SLF001
            # anything else (e.g. a sensor notification) is not an answer to us

    def version(self) -> str:
        """The unit's firmware version (``getversion``): proves the blaster answers."""
        with self._lock:
            self._conn.send(b"getversion\r")
            line = self._conn.read_line(time.monotonic() + self.timeout, b"\r").strip()
        if line.startswith("ERR") or not line:
            raise self._conn._err(f"getversion answered {line!r}")  # noqa: SLF001
        return line

    def check(self, remote: Remote) -> str:
        return f"iTach {self.addr} firmware {self.version()}"

    def stop(self) -> None:
        """Stop a repeating transmission (``stopir``)."""
        with self._lock:
            self._conn.send(f"stopir,{self.addr}\r".encode())
            with contextlib.suppress(InfraError):
                self._conn.read_line(time.monotonic() + self.timeout, b"\r")

    def close(self) -> None:
        self._conn.close()


def _with_gap(frame: list[int], gap: int) -> list[int]:
    return list(frame) + [gap]


# ----------------------------------------------------------------------------------- lircd


class LircdBlaster:
    """The lircd socket protocol (``SEND_ONCE``, ``SEND_START``/``SEND_STOP``) over TCP or a unix socket."""

    def __init__(self, address: tuple[str, int] | str, *, rig_name: str | None = None, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._conn = _LineSocket(address, rig_name=rig_name, what="lircd", timeout=timeout)
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


# ----------------------------------------------------------------------------------- the driver


def _blaster_for(url: str, *, rig_name: str | None, timeout: float) -> Blaster:
    if url.startswith("/") or url.startswith("unix:"):
        path = url.removeprefix("unix://").removeprefix("unix:")
        return LircdBlaster(path, rig_name=rig_name, timeout=timeout)
    p = urlparse(url)
    if p.scheme == "itach":
        if not p.hostname:
            raise TestError(f"IR url {url!r}: needs a host, e.g. itach://192.0.2.10:4998/1:1")
        module, connector = 1, 1
        if p.path and p.path != "/":
            try:
                m, c = p.path.strip("/").split(":")
                module, connector = int(m), int(c)
            except ValueError:
                raise TestError(f"IR url {url!r}: path must be /module:connector, e.g. /1:1") from None
        return ItachBlaster(p.hostname, p.port or 4998, module, connector, rig_name=rig_name, timeout=timeout)
    if p.scheme == "lirc":
        if not p.hostname:
            raise TestError(f"IR url {url!r}: needs host and port, e.g. lirc://127.0.0.1:8765")
        return LircdBlaster((p.hostname, p.port or 8765), rig_name=rig_name, timeout=timeout)
    raise TestError(f"IR url {url!r}: unsupported scheme (itach://, lirc:// or a lircd socket path)")


class IrRemote:
    """Presses keys on one box through an IR blaster (see the module docstring).

    ``remote`` is a parsed :class:`~lab.lircd.Remote` or the path of a lircd.conf file (pick one
    of several remotes with ``remote_name``). ``inter_press_delay`` is the least time between the
    end of one press and the start of the next, as a person's thumb leaves it.
    """

    def __init__(
        self,
        url: str,
        remote: Remote | str | os.PathLike[str],
        *,
        rig_name: str | None = None,
        remote_name: str | None = None,
        inter_press_delay: float = 0.3,
        timeout: float = 5.0,
    ) -> None:
        if inter_press_delay < 0:
            raise TestError(f"inter_press_delay must be >= 0, got {inter_press_delay}")
        self.url = url
        self.rig_name = rig_name
        self.inter_press_delay = inter_press_delay
        self.remote = self._load(remote, remote_name)
        self._blaster = _blaster_for(url, rig_name=rig_name, timeout=timeout)
        self._last_end = -math.inf
        self._toggle = 0
        self._lock = threading.RLock()
        self.presses = 0

    def _load(self, remote: Remote | str | os.PathLike[str], name: str | None) -> Remote:
        if isinstance(remote, Remote):
            if name and remote.name != name:
                raise TestError(f"remote is {remote.name!r}, not {name!r}")
            return remote
        try:
            remotes = load_remotes(Path(remote))
        except LircdError as exc:
            raise InfraError(f"remote file: {exc}", rig=self.rig_name, instrument="ir") from exc
        try:
            return pick_remote(remotes, name, remote, hint="set remote_name")
        except LircdError as exc:
            raise TestError(str(exc)) from None

    @classmethod
    def from_rig(cls, rig: Any, **overrides: Any) -> IrRemote:
        """The IR remote of a rig (its ``ir`` section: url, remote file, remote_name, delay)."""
        cfg = rig.ir
        if cfg is None:
            raise TestError(f"rig {rig.name} has no 'ir' section in its rig file")
        kwargs: dict[str, Any] = {
            "rig_name": rig.name,
            "remote_name": cfg.remote_name,
            "inter_press_delay": cfg.inter_press_delay,
        }
        kwargs.update(overrides)
        return cls(cfg.url, cfg.remote, **kwargs)

    # ------------------------------------------------------------------------------- helpers

    @property
    def keys(self) -> list[str]:
        """Every key name the remote defines."""
        return self.remote.keys

    def _check(self, key: str) -> None:
        if not isinstance(key, str):
            raise TestError(f"key must be a name like 'KEY_OK', got {key!r}")
        try:
            self.remote.check_key(key)
        except UnknownKeyError as exc:
            hint = f" Did you mean: {', '.join(exc.close)}?" if exc.close else ""
            raise TestError(
                f"remote {self.remote.name!r} has no key {key!r}.{hint} "
                f"(it has {len(self.remote.keys)} keys: {', '.join(self.remote.keys[:12])}"
                f"{', ...' if len(self.remote.keys) > 12 else ''})"
            ) from None

    def _pace(self, delay: float | None) -> None:
        wait = self._last_end + (self.inter_press_delay if delay is None else delay) - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def _signal_seconds(self, key: str, repeat: int) -> float:
        """How long a press occupies the LED: its frames and the gaps after them."""
        frames, gaps = self.remote.frames(key, repeat=repeat)
        return (sum(map(sum, frames)) + sum(gaps)) / 1e6  # the lead-out gap belongs to the press

    def _send(self, key: str, *, repeat: int, delay: float | None) -> None:
        with self._lock:
            self._pace(delay)
            started = time.monotonic()
            try:
                self._blaster.send(self.remote, key, repeat=repeat, toggle=self._toggle)
            finally:
                # a blaster may answer before its LED is done: the press ends when the signal does
                self._last_end = max(time.monotonic(), started + self._signal_seconds(key, repeat))
            self._toggle ^= 1  # RC-5/RC-6: the next press is a new press
            self.presses += 1

    # ------------------------------------------------------------------------------- actions

    @step("ir")
    def press(self, key: str, *, repeat: int = 0) -> None:
        """Press and release ``key`` once (``repeat`` extra repeat frames, as a short hold)."""
        self._check(key)
        if repeat < 0:
            raise TestError(f"repeat must be >= 0, got {repeat}")
        self._send(key, repeat=repeat, delay=None)

    @step("ir")
    def press_many(self, keys: Iterable[str], *, delay: float | None = None) -> None:
        """Press each key in turn, ``delay`` (default: the inter-press delay) apart.

        Every name is checked before the first press, so a typo sends nothing.
        """
        if isinstance(keys, str):
            raise TestError("press_many takes a list of key names, not one string")
        seq = list(keys)
        for key in seq:
            self._check(key)
        for key in seq:
            self._send(key, repeat=0, delay=delay)

    @step("ir")
    def hold(self, key: str, seconds: float) -> None:
        """Hold ``key`` down for ``seconds`` (the remote's repeat frames for that long)."""
        self._check(key)
        if not (seconds >= 0 and math.isfinite(seconds)):
            raise TestError(f"hold time must be a finite number of seconds >= 0, got {seconds}")
        with self._lock:
            self._pace(None)
            started = time.monotonic()
            try:
                self._blaster.hold(self.remote, key, seconds, toggle=self._toggle)
            finally:
                self._last_end = max(time.monotonic(), started + seconds)
            self._toggle ^= 1
            self.presses += 1

    @step("ir")
    def press_until(
        self,
        key: str,
        predicate: Callable[[], object],
        max_presses: int = 10,
        *,
        delay: float | None = None,
    ) -> int:
        """Press ``key`` until ``predicate()`` is truthy; return how many presses it took.

        The predicate is checked after each press. Raises :class:`~lab.errors.DeviceFault` when it
        is still false after ``max_presses`` (the box did not get where the presses should take it).
        """
        self._check(key)
        if max_presses < 1:
            raise TestError(f"max_presses must be >= 1, got {max_presses}")
        for n in range(1, max_presses + 1):
            self._send(key, repeat=0, delay=delay)
            if predicate():
                return n
        raise DeviceFault(
            f"pressed {key} {max_presses} times and the condition never became true",
            rig=self.rig_name,
            symptom="press-until-exhausted",
        )

    @step("ir")
    def check(self) -> str:
        """Ask the blaster whether it is there and ready (before any press, LAVA-style).

        iTach: ``getversion``; lircd: ``VERSION`` and ``LIST`` of the remote, which must hold every
        key of the rig's remote file. Returns a one-line description; InfraError otherwise.
        """
        return self._blaster.check(self.remote)

    def close(self) -> None:
        """Close the connection to the blaster."""
        self._blaster.close()

    def __enter__(self) -> IrRemote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"IrRemote({self.url!r}, remote={self.remote.name!r}, rig={self.rig_name!r})"
