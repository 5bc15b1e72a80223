"""Serial console driver: one reader thread, one console log, expect on the live stream.

``SerialConsole`` opens any pyserial URL (``/dev/ttyUSB0``, ``socket://host:port`` as ser2net
serves it, ``rfc2217://host:port``). A reader thread owns the port: every byte goes first to the
console log (raw, garbage included), then into the buffer that :meth:`SerialConsole.expect`
searches. Waiters sleep on a condition variable and are woken by each chunk, so there is no
polling interval between a byte arriving and the match being returned.

Outcomes (lab.errors):

* the box did not print what was expected in time -> :class:`ExpectTimeout`, a ``DeviceFault``
  carrying the last console lines and the log path;
* a death string (kernel panic, Oops, watchdog reset, OOM kill, segfault; configurable) ->
  :class:`ConsoleDeath`, a ``DeviceFault`` with ``symptom`` and an ``excerpt`` (lines before, the
  line, and the call trace after it);
* the console connection itself failed (refused, dropped and not back after bounded retries,
  dropped during a wait) -> ``InfraError(instrument="serial")``: never blamed on the box;
* the caller used a console it had not opened -> ``TestError``.

Death strings are raised **once**: by the call waiting when the line arrives, or, when nobody is
waiting, by the next ``expect``/``run``/``login`` call. Text the box printed before the death line
still matches first. One crash is one incident: further death lines within ``incident_window``
seconds (the panic after the Oops, the watchdog reset after the panic) are recorded but not raised
again. Pass ``check_death=False`` (or use :meth:`SerialConsole.expecting_death`) when a crash is
the point of the test, and :meth:`SerialConsole.clear_deaths` to forget unreported ones between
tests; every event stays in :attr:`SerialConsole.deaths` for evidence.

Example::

    with SerialConsole("socket://127.0.0.1:17001", rig_name="stb-a", log_path="run/stb-a.log") as con:
        con.interrupt_bootloader(timeout=20)
        con.bootloader_run("boot")
        con.login(timeout=30)
        assert con.run("fw version").output.startswith("version=")
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import secrets
import select
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import serial

from lab.drivers.console_death import DEFAULT_DEATH_STRINGS, ConsoleDeath, DeathEvent, DeathWatch
from lab.drivers.console_log import ConsoleLog
from lab.drivers.result import CommandResult
from lab.errors import DeviceFault, InfraError, TestError
from lab.steps import step

if TYPE_CHECKING:
    from lab.rig import Rig

INSTRUMENT = "serial"

_KLINE = r"\[\s*\d+\.\d+\] [^\n]*\n"
KERNEL_LINE = re.compile(r"\[\s*\d+\.\d+\] [^\n]*(?:\n|$)")
AUTOBOOT = r"Hit any key to stop autoboot|Autoboot in \d+ seconds|autoboot in \d+"
KERNEL_STARTED = r"Starting kernel \.\.\.|Booting Linux|Linux version \d"
LOGIN_PROMPT = r"login: ?$"
PASSWORD_PROMPT = r"[Pp]assword: ?$"
LOGIN_INCORRECT = r"Login incorrect|Authentication failure|Permission denied"

_BOOTLOADER_MARKS = ("U-Boot ", "autoboot", "Autoboot")
_LINUX_MARKS = ("Starting kernel", "Booting Linux", "Linux version", "login: ", "# ", "$ ", "] ")


def _boot_phase(text: str) -> str | None:
    """Where the box is by the last boot marker in ``text``: ``bootloader``, ``linux`` or None.

    Plain ``rfind`` (C speed): it runs on every chunk the console receives.
    """
    bl = max(text.rfind(m) for m in _BOOTLOADER_MARKS)
    lx = max(text.rfind(m) for m in _LINUX_MARKS)
    if bl < 0 and lx < 0:
        return None
    return "bootloader" if bl > lx else "linux"


Pattern = str | bytes | re.Pattern[str] | re.Pattern[bytes]


@dataclass(frozen=True)
class ExpectMatch:
    """What :meth:`SerialConsole.expect` found: which pattern, the match, and the text before it.

    ``match`` is an ``re.Match`` over the console text (UTF-8, undecodable bytes as U+FFFD).
    """

    index: int
    match: re.Match[str]
    before: str
    pattern: str

    @property
    def text(self) -> str:
        """The matched text."""
        return self.match.group(0)

    def group(self, *args: int | str) -> Any:
        """Shortcut for ``self.match.group(...)``."""
        return self.match.group(*args)


class ExpectTimeout(DeviceFault):
    """The box did not print what was expected in time (a ``DeviceFault``).

    Carries ``tail`` (the last console lines), ``log_path``, ``patterns`` and ``timeout``.
    """

    def __init__(
        self,
        message: str,
        *,
        rig: str | None,
        tail: str,
        log_path: Path | None,
        patterns: Sequence[str] = (),
        timeout: float = 0.0,
    ) -> None:
        self.tail = tail
        self.log_path = log_path
        self.patterns = list(patterns)
        self.timeout = timeout
        where = f"\nconsole log: {log_path}" if log_path else "\nconsole log: (in memory only)"
        evidence = {"console_log": str(log_path) if log_path else None, "patterns": list(patterns), "timeout": timeout}
        super().__init__(
            message + where, rig=rig, symptom="console-timeout", excerpt=tail or "(no output)", evidence=evidence
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


def _compile(pattern: Pattern) -> re.Pattern[str]:
    if isinstance(pattern, re.Pattern):
        src = pattern.pattern
        flags = pattern.flags & ~(re.LOCALE | re.ASCII) if isinstance(src, bytes) else pattern.flags
        if isinstance(src, bytes):
            return re.compile(src.decode("utf-8", errors="replace"), flags)
        return pattern
    if isinstance(pattern, bytes):
        return re.compile(pattern.decode("utf-8", errors="replace"))
    if isinstance(pattern, str):
        return re.compile(pattern)
    raise TypeError(f"expect pattern must be str, bytes or re.Pattern, not {type(pattern).__name__}")


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
        threading.Thread(target=close, name="console-close", daemon=True).start()
    else:
        close()


def clean_output(text: str) -> str:
    """Command output as a program's stdout would be: ``\\n`` line ends, kernel log lines removed.

    Kernel messages (``[   12.345678] ...``) can arrive in the middle of a command's output on a
    real console; they are cut out wherever they start, so a line they interrupted is joined again.
    """
    text = text.replace("\r\n", "\n").replace("\r", "")
    return KERNEL_LINE.sub("", text)


class SerialConsole:
    """A box's serial console: log, expect, login, run, bootloader (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        rig_name: str | None = None,
        log_path: str | os.PathLike[str] | None = None,
        baudrate: int = 115200,
        death_strings: Mapping[str, str] | Sequence[str] | None = None,
        char_delay: float = 0.0,
        prompt: str = r"[#$] $",
        encoding: str = "utf-8",
        bootloader_prompt: str = r"=> $",
        newline: str = "\n",
        reconnect_delays: Sequence[float] = (0.1, 0.2, 0.4, 0.8, 1.5),
        max_buffer: int = 1024 * 1024,
        login_user: str = "root",
        login_password: str | None = None,
        incident_window: float = 10.0,
        search_window: int = 64 * 1024,
        write_timeout: float = 10.0,
    ) -> None:
        if char_delay < 0:
            raise ValueError("char_delay must be >= 0")
        if write_timeout <= 0:
            raise ValueError("write_timeout must be > 0")
        self.url = url
        self.rig_name = rig_name
        self.baudrate = baudrate
        self.char_delay = char_delay
        self.prompt = prompt
        self.encoding = encoding
        self.bootloader_prompt = bootloader_prompt
        self.newline = newline
        self.reconnect_delays = tuple(reconnect_delays)
        self.max_buffer = max_buffer
        self.login_user = login_user
        self._login_password = login_password
        self.log = ConsoleLog(log_path)
        self._watch = DeathWatch(death_strings, incident_window=incident_window)
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._port: serial.SerialBase | None = None
        self._state = "closed"  # closed | open | reconnecting | dead
        self._dead_reason = ""
        self._drops = 0
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._wake_r = self._wake_w = -1
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._text = ""  # pending (not yet consumed by expect) console text
        self._text_base = 0  # absolute text position of self._text[0]
        self._last_rx = 0.0
        self._phase = "unknown"  # bootloader | linux, from the last boot marker seen
        #: bytes received from the box since the console was created (0: never heard from it)
        self.received_bytes = 0
        self.search_window = search_window
        #: seconds a write may block (a stalled ser2net, a UART held by flow control) before InfraError;
        #: tty and socket:// ports (pyserial's rfc2217:// cannot time out a write)
        self.write_timeout = write_timeout

    # -- construction from a rig -------------------------------------------------------------

    @classmethod
    def from_rig(
        cls, rig: Rig, *, log_path: str | os.PathLike[str] | None = None, run_dir: str | os.PathLike[str] | None = None
    ) -> SerialConsole:
        """The console of ``rig`` (its ``serial:`` section); log at ``log_path`` or ``run_dir/<rig>.console.log``."""
        cfg = rig.serial
        if cfg is None:
            raise InfraError("rig has no serial section", rig=rig.name, instrument=INSTRUMENT)
        if log_path is None and run_dir is not None:
            log_path = Path(run_dir) / f"{rig.name}.console.log"
        return cls(
            cfg.url,
            rig_name=rig.name,
            log_path=log_path,
            baudrate=cfg.baudrate,
            death_strings=cfg.death_strings,
            char_delay=cfg.char_delay,
            prompt=cfg.prompt,
            bootloader_prompt=cfg.bootloader_prompt,
            login_user=cfg.login.user,
            login_password=cfg.login.password(),
        )

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
        port.reset_input_buffer = lambda: None  # type: ignore[method-assign]
        try:
            port.open()
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
    def open(self, timeout: float = 5.0) -> SerialConsole:
        """Open the console log, then the port (retrying a refused connection for up to ``timeout`` s)."""
        if self._state in ("open", "reconnecting"):
            return self
        if self._state == "dead":  # reopening after a failure: release the old port and wake pipe first
            self.close()
        self.log.open()
        self.log.note(f"console opened {_redact_url(self.url)}")
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            try:
                port = self._make_port()
                break
            except (serial.SerialException, OSError, ValueError) as exc:
                if time.monotonic() + delay > deadline or isinstance(exc, ValueError):
                    self.log.note(f"console open failed: {exc}")
                    self.log.close()
                    raise self._infra(f"cannot open console {_redact_url(self.url)}: {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
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

    def __enter__(self) -> SerialConsole:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reader thread -------------------------------------------------------------------------

    def _read_some(self, port: serial.SerialBase) -> bytes:
        fd = self._fd_of(port)
        if fd is None:  # rfc2217://, loop:// ...: pyserial's own timeout-based read
            data = port.read(1)
            if data and port.in_waiting:
                data += port.read(port.in_waiting)
            return data
        ready, _, _ = select.select([fd, self._wake_r], [], [], 1.0)
        if fd not in ready:
            return b""
        data = port.read(65536)
        if not data:
            # readable but nothing read: a socket at EOF raises in pyserial; a tty may return b""
            raise serial.SerialException("port readable but returned no data (device gone?)")
        return data

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            port = self._port
            if port is None:
                return
            try:
                data = self._read_some(port)
            except Exception as exc:  # pyserial raises SerialException, OSError, TypeError on close
                if self._stop.is_set():
                    return
                self._connection_lost(str(exc) or type(exc).__name__)
                if not self._reconnect():
                    return
                continue
            if data:
                try:
                    self._feed(data)
                except Exception as exc:  # e.g. the log's disk is full: the lab failed, not the box
                    with self._cond:
                        self._state = "dead"
                        self._dead_reason = f"console reader failed: {type(exc).__name__}: {exc}"
                        self._cond.notify_all()
                    return

    def _connection_lost(self, reason: str) -> None:
        with self._cond:
            port, self._port = self._port, None
            self._state = "reconnecting"
            self._drops += 1
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
            except Exception as exc:
                last = str(exc)
                continue
            self._decoder.reset()
            with self._cond:
                if self._stop.is_set():  # closed while we were connecting: nobody owns this port
                    _close_port(port)
                    return False
                self._port = port
                self._state = "open"
                self._cond.notify_all()
            self.log.note(f"console reconnected {_redact_url(self.url)}")
            return True
        with self._cond:
            self._state = "dead"
            self._dead_reason = f"connection lost and not back after {len(self.reconnect_delays)} attempts: {last}"
            self._cond.notify_all()
        self.log.note(f"console gave up: {self._dead_reason}")
        return False

    def _feed(self, data: bytes) -> None:
        offset = self.log.append(data)
        self.received_bytes += len(data)
        text = self._decoder.decode(data)
        if not text:
            return
        with self._cond:
            self._last_rx = time.monotonic()
            start_abs = self._text_base + len(self._text)
            self._text += text
            if len(self._text) > self.max_buffer:
                cut = len(self._text) - self.max_buffer
                self._text = self._text[cut:]
                self._text_base += cut
            self._watch.feed(text, start_abs, offset)
            phase = _boot_phase(text)
            if phase:
                self._phase = phase
            self._cond.notify_all()

    # -- expect --------------------------------------------------------------------------------

    @property
    def deaths(self) -> list[DeathEvent]:
        """Every death string seen since the console was created (reported or not), oldest first."""
        return self._watch.events

    @property
    def incident_window(self) -> float:
        """Seconds after a reported death during which further death lines count as the same crash."""
        return self._watch.incident_window

    def _settle_death(self, ev: DeathEvent, *, max_wait: float = 1.5, quiet: float = 0.3) -> None:
        """Give the box a moment to print the call trace after the death line (for the excerpt)."""
        end = time.monotonic() + max_wait
        while len(ev.after) < 40:
            now = time.monotonic()
            if now >= end or now - self._last_rx >= quiet or self._state != "open":
                return
            self._cond.wait(min(quiet, end - now))

    def _raise_death(self, ev: DeathEvent) -> None:
        ev.raised = True
        self._settle_death(ev)
        # The box is going down: what it printed so far is evidence, not something to match later,
        # and further death lines of the same crash (an Oops, then the panic) are one incident.
        self._consume(self._text_base + len(self._text))
        self._watch.report_all()
        raise ConsoleDeath(ev, rig=self.rig_name, log_path=self.log_path)

    def _consume(self, abs_pos: int) -> None:
        cut = abs_pos - self._text_base
        if cut > 0:
            self._text = self._text[cut:]
            self._text_base = abs_pos

    def _expect(
        self,
        patterns: Pattern | Sequence[Pattern],
        timeout: float,
        *,
        check_death: bool = True,
        raise_timeout: bool = True,
        overall: float | None = None,
    ) -> ExpectMatch | None:
        """The expect loop; ``overall`` is the caller's whole timeout, for the message of a last look."""
        if isinstance(patterns, str | bytes | re.Pattern):
            patterns = [patterns]
        compiled = [_compile(p) for p in patterns]
        if not compiled:
            raise ValueError("expect needs at least one pattern")
        deadline = time.monotonic() + timeout
        with self._cond:
            drops_at_start = self._drops
            scanned_abs = self._text_base  # text before this (absolute) position was searched already
            while True:
                if self._state == "closed":
                    raise TestError(f"console of {self.rig_name or self.url} is not open (call open() first)")
                # Search only the new text plus a window before it: a chatty box must not make each
                # wake-up rescan the whole buffer (a match longer than the window is not found).
                start = max(0, scanned_abs - self._text_base - self.search_window)
                best: tuple[int, int, re.Match[str]] | None = None
                for i, rx in enumerate(compiled):
                    m = rx.search(self._text, start)
                    if m and (best is None or m.start() < best[0]):
                        best = (m.start(), i, m)
                scanned_abs = self._text_base + len(self._text)
                death = self._watch.pending() if check_death else None
                if best is not None and (death is None or self._text_base + best[2].end() <= death.text_pos):
                    _, i, m = best
                    before = self._text[: m.start()]
                    self._consume(self._text_base + m.end())
                    return ExpectMatch(i, m, before, compiled[i].pattern)
                if death is not None:
                    self._raise_death(death)
                if self._state == "dead":
                    raise self._infra(f"console connection dead ({self._dead_reason}); log: {self.log_path}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if self._state != "open" or self._drops != drops_at_start:
                        raise self._infra(
                            f"console connection dropped while waiting for {[p.pattern for p in compiled]} "
                            f"({self._dead_reason}); log: {self.log_path}"
                        )
                    if not raise_timeout:
                        return None
                    silent = time.monotonic() - self._last_rx
                    heard = (
                        f"last byte {silent:.1f} s ago"
                        if self.received_bytes
                        else "not one byte received since the console was opened: box off, or wrong port/adapter?"
                    )
                    waited = timeout if overall is None else overall
                    raise ExpectTimeout(
                        f"console did not show {[p.pattern for p in compiled]} within {waited:.1f} s ({heard})",
                        rig=self.rig_name,
                        tail=self.log.tail(15),
                        log_path=self.log_path,
                        patterns=[p.pattern for p in compiled],
                        timeout=waited,
                    )
                self._cond.wait(remaining)

    @step(INSTRUMENT)
    def expect(
        self, patterns: Pattern | Sequence[Pattern], timeout: float = 30.0, *, check_death: bool = True
    ) -> ExpectMatch:
        """Wait for the first of ``patterns`` (regex str, bytes or compiled) in the console output.

        Returns the earliest match in the stream (ties go to the lower index) and consumes the
        text up to its end. Raises :class:`ExpectTimeout`, :class:`ConsoleDeath` or ``InfraError``.
        One waiter at a time: two threads expecting on one console would consume each other's
        text (evidence for everyone is in the log: :meth:`mark` / :meth:`since`).

        Example::

            m = con.expect([r"login: $", r"=> $"], timeout=20)
            if m.index == 1: ...
        """
        result = self._expect(patterns, timeout, check_death=check_death)
        assert result is not None
        return result

    @step(INSTRUMENT)
    def try_expect(
        self, patterns: Pattern | Sequence[Pattern], timeout: float = 30.0, *, check_death: bool = True
    ) -> ExpectMatch | None:
        """Like :meth:`expect`, but None instead of :class:`ExpectTimeout` when nothing matched in time.

        For polling ("is there a prompt?") where silence is an answer, not a fault. Death strings
        and a failed connection still raise.
        """
        return self._expect(patterns, timeout, check_death=check_death, raise_timeout=False)

    @contextlib.contextmanager
    def expecting_death(self) -> Iterator[list[DeathEvent]]:
        """Inside this block death strings are recorded but not raised (a crash is the test's point).

        Yields the list of events seen inside the block::

            with con.expecting_death() as seen:
                remote.press_many(["KEY_MENU", "KEY_9", "KEY_9", "KEY_OK"])
                con.expect("Kernel panic", timeout=10)
            assert seen[0].symptom == "kernel-panic"
        """
        with self._cond:
            self._watch.suppressed += 1
            first = len(self._watch.events)
        seen: list[DeathEvent] = []
        try:
            yield seen
        finally:
            with self._cond:
                self._watch.suppressed -= 1
                seen.extend(self._watch.events[first:])
                if seen:
                    self._watch.report_all()

    def check_death(self) -> None:
        """Raise :class:`ConsoleDeath` for a death string nobody has been told about yet."""
        with self._cond:
            ev = self._watch.pending()
            if ev is not None:
                self._raise_death(ev)

    def clear_deaths(self) -> list[DeathEvent]:
        """Forget death strings nobody was told about (e.g. between tests); returns them."""
        with self._cond:
            return self._watch.clear()

    def new_incident(self) -> None:
        """A new boot begins: a crash from now on is a new incident, not part of the last one.

        Call it when the box is powered on or reset, so that a panic right after the watchdog
        reset of an earlier crash is reported instead of being folded into that crash.
        """
        with self._cond:
            self._watch.new_incident()

    def drain(self) -> str:
        """Drop (and return) console text not yet consumed by expect."""
        with self._cond:
            text = self._text
            self._consume(self._text_base + len(self._text))
            return text

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

    # -- evidence ------------------------------------------------------------------------------

    def mark(self) -> int:
        """A point in the console log, for :meth:`since`."""
        return self.log.mark()

    def since(self, mark: int) -> str:
        """Console text (with stblab's marker lines) from ``mark`` until now."""
        return self.log.since(mark)

    def tail(self, n: int = 20) -> str:
        """The last ``n`` console lines."""
        return self.log.tail(n)

    # -- shell and bootloader ------------------------------------------------------------------

    def _quiet_for(self) -> float:
        with self._cond:
            return time.monotonic() - self._last_rx

    @step(INSTRUMENT)
    def login(self, user: str | None = None, *, password: str | None = None, timeout: float = 30.0) -> None:
        """Log in on the console and wait for the shell prompt (no-op when already at a prompt).

        Waits through a boot in progress; nudges with a newline (backing off) when Linux runs but
        no prompt shows -- never while the bootloader runs, where a newline would stop it. A
        refused login or a password prompt without a configured password is an ``InfraError``
        (the lab's credentials are wrong, not the box). ``password`` is keyword-only, so the step
        log always shows it as ``***``.
        """
        user = user or self.login_user
        password = password if password is not None else self._login_password
        deadline = time.monotonic() + timeout
        patterns = [LOGIN_PROMPT, PASSWORD_PROMPT, self.prompt, LOGIN_INCORRECT]
        sent_user = sent_password = False
        user_sent_count = 0
        last_nudge, nudge_every = 0.0, 1.0
        while True:
            remaining = deadline - time.monotonic()
            # at the deadline: one last look, ExpectTimeout (with the tail) only if nothing is there
            m = self._expect(patterns, max(0.0, min(remaining, 0.5)), raise_timeout=remaining <= 0, overall=timeout)
            if m is None:
                # Nudge a box idling at a prompt printed before we looked (or buried under kernel
                # chatter) -- but only once Linux runs: a newline typed while the bootloader runs,
                # even before its countdown shows, can stop the boot. Back off each time.
                since_nudge = time.monotonic() - last_nudge
                never_heard = self.received_bytes == 0 and self._quiet_for() >= 1.0
                in_linux = self._phase == "linux" and (self._quiet_for() >= 1.0 or since_nudge >= 2 * nudge_every)
                if since_nudge >= nudge_every and (never_heard or in_linux):
                    self._write(self._encode(self.newline))
                    last_nudge, nudge_every = time.monotonic(), min(nudge_every * 2, 8.0)
                continue
            if m.index == 0:
                if (sent_user and sent_password) or user_sent_count >= 3:
                    raise self._infra(f"console login as {user!r} failed: login prompt came back")
                self._write(self._encode(user + self.newline))
                sent_user, sent_password = True, False
                user_sent_count += 1
            elif m.index == 1:
                if password is None:
                    raise self._infra(f"console asks a password for {user!r} but none is configured")
                self._write(self._encode(password + self.newline))
                sent_password = True
            elif m.index == 2:
                return
            else:
                raise self._infra(f"console login as {user!r} refused: {m.text!r} (check the rig's login settings)")

    @step(INSTRUMENT)
    def run(
        self, cmd: str, timeout: float = 30.0, *, check_death: bool = True, strip_kernel: bool | None = None
    ) -> CommandResult:
        """Run a shell command on the console; output (kernel lines removed) and exit code.

        The command is framed by unique markers (``echo B; cmd; echo E$?``) so its echo, the
        prompt and kernel messages printed meanwhile don't end up in the output. A command that
        does not finish in time is interrupted (Ctrl-C) and raises :class:`ExpectTimeout`.
        ``strip_kernel`` (default: yes, except for ``dmesg``, whose output *is* kernel lines)
        controls the removal of ``[ 12.345] ...`` lines.

        Example::

            r = con.run("cat /proc/uptime")
            uptime = float(r.output.split()[0])
        """
        if "\n" in cmd.strip() or "\r" in cmd:
            raise ValueError("run() takes one command line; join commands with ';' or '&&'")
        body = cmd.strip().rstrip(";").strip()
        if not body:
            raise ValueError("empty command")
        tag = secrets.token_hex(5)
        begin, end = f"SB{tag}", f"SE{tag}"
        t0 = time.monotonic()
        self.drain()
        self._write(self._encode(f"echo {begin}; {body}; echo {end}$?{self.newline}"))
        try:
            # a kernel message may land right after a marker, before its newline or exit code
            self._expect(rf"{begin}(?:{_KLINE})*\r?\n", timeout, check_death=check_death)
            m = self._expect(
                rf"{end}(?:{_KLINE})*(\d+)", max(0.0, timeout - (time.monotonic() - t0)), check_death=check_death
            )
        except ExpectTimeout as exc:
            with contextlib.suppress(InfraError):
                self._write(b"\x03")
            last = exc.tail.rstrip().rsplit("\n", 1)[-1] + " "
            where = ""
            if re.search(LOGIN_PROMPT, last) or re.search(PASSWORD_PROMPT, last):
                where = " (the console is at a login prompt: not logged in, or the box rebooted)"
            elif re.search(self.bootloader_prompt, last):
                where = " (the console is at the bootloader prompt)"
            raise ExpectTimeout(
                f"`{cmd}` did not finish within {timeout:.1f} s on the console{where}",
                rig=self.rig_name,
                tail=exc.tail,
                log_path=self.log_path,
                patterns=exc.patterns,
                timeout=timeout,
            ) from None
        assert m is not None
        if strip_kernel is None:
            strip_kernel = body.split()[0] not in ("dmesg", "journalctl")
        output = clean_output(m.before) if strip_kernel else m.before.replace("\r\n", "\n").replace("\r", "")
        return CommandResult(cmd, output, int(m.group(1)), time.monotonic() - t0)

    @step(INSTRUMENT)
    def interrupt_bootloader(self, timeout: float = 30.0, *, key: str | bytes = "\r") -> None:
        """Stop the autoboot countdown and wait for the bootloader prompt (``=> ``).

        Waits for the countdown (power the box on after calling this, or while it runs), then
        keeps sending ``key`` until the prompt appears; a box already at the prompt is asked for
        a fresh one (``key`` after half a second of silence). If the kernel starts anyway although
        the countdown was seen, the keys did not reach the box: an ``InfraError`` (the console's
        transmit path), not a device fault.
        """
        deadline = time.monotonic() + timeout
        data = self._encode(key)
        patterns = [AUTOBOOT, self.bootloader_prompt, KERNEL_STARTED]
        while True:
            remaining = deadline - time.monotonic()
            # at the deadline: one last look, ExpectTimeout (with the tail) only if nothing is there
            m = self._expect(patterns, max(0.0, min(remaining, 0.5)), raise_timeout=remaining <= 0, overall=timeout)
            if m is not None:
                break
            if self._quiet_for() >= 0.5:  # a box already sitting at the prompt prints nothing: ask for one
                self._write(data)
        if m.index == 2:
            raise self._infra("the kernel started before an autoboot countdown was seen (console opened too late?)")
        if m.index == 0:
            while True:
                self._write(data)
                remaining = deadline - time.monotonic()
                got = self._expect(
                    [self.bootloader_prompt, KERNEL_STARTED], max(0.0, min(0.1, remaining)), raise_timeout=False
                )
                if got is not None and got.index == 0:
                    break
                if got is not None:
                    raise self._infra("autoboot countdown was not interrupted: keys sent on the console had no effect")
                if remaining <= 0:
                    self._expect(self.bootloader_prompt, 0.0, overall=timeout)  # the prompt, or ExpectTimeout
                    break
        # let the extra keys' prompts arrive, then start clean
        end = time.monotonic() + 0.5
        while time.monotonic() < end and self._quiet_for() < 0.15:
            time.sleep(0.05)
        self.drain()

    @step(INSTRUMENT)
    def bootloader_run(self, cmd: str, timeout: float = 10.0) -> CommandResult:
        """Run a bootloader command at the ``=> `` prompt; its output (echo removed).

        The exit code is 127 when the bootloader says ``Unknown command``, else 0 (U-Boot has no
        reliable status over the console). ``boot``/``reset`` don't come back to the prompt: send
        them with :meth:`sendline` instead.
        """
        t0 = time.monotonic()
        self.drain()
        self._write(self._encode(cmd + self.newline))
        m = self._expect(self.bootloader_prompt, timeout)
        assert m is not None
        lines = clean_output(m.before).split("\n")
        if lines and lines[0].strip().endswith(cmd.strip()):
            lines = lines[1:]
        out = "\n".join(lines).strip("\n")
        out = out + "\n" if out else ""
        code = 127 if re.search(r"Unknown command", out) else 0
        return CommandResult(cmd, out, code, time.monotonic() - t0)

    def __repr__(self) -> str:
        return f"SerialConsole({_redact_url(self.url)!r}, rig={self.rig_name!r}, state={self._state})"


__all__ = [
    "DEFAULT_DEATH_STRINGS",
    "ConsoleDeath",
    "DeathEvent",
    "ExpectMatch",
    "ExpectTimeout",
    "SerialConsole",
    "clean_output",
]
