"""Expect on the console's live stream: patterns, matches, timeouts and death strings."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from lab.drivers.console.base import ConsoleBase
from lab.drivers.console.port import INSTRUMENT
from lab.drivers.console_death import ConsoleDeath, DeathEvent
from lab.errors import DeviceFault, TestError
from lab.steps import step

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
        evidence: dict[str, object] = {
            "console_log": str(log_path) if log_path else None,
            "patterns": list(patterns),
            "timeout": timeout,
        }
        super().__init__(
            message + where, rig=rig, symptom="console-timeout", excerpt=tail or "(no output)", evidence=evidence
        )


def _compile(pattern: Pattern) -> re.Pattern[str]:
    if isinstance(pattern, re.Pattern):
        src = pattern.pattern
        flags = pattern.flags & ~(re.LOCALE | re.ASCII) if isinstance(src, bytes) else pattern.flags
        if isinstance(src, bytes):
            return re.compile(src.decode("utf-8", errors="replace"), flags)
        return cast("re.Pattern[str]", pattern)
    if isinstance(pattern, bytes):
        return re.compile(pattern.decode("utf-8", errors="replace"))
    if isinstance(pattern, str):
        return re.compile(pattern)
    raise TypeError(f"expect pattern must be str, bytes or re.Pattern, not {type(pattern).__name__}")


class ExpectMixin(ConsoleBase):
    """Expect half of :class:`lab.drivers.console.SerialConsole`."""

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
        on_match: Callable[[], None] | None = None,
    ) -> ExpectMatch | None:
        """The expect loop; ``overall`` is the caller's whole timeout, for the message of a last look.

        ``on_match`` runs under the console's lock right after the match was consumed (before the
        reader can add text), so a caller can start collecting what follows without a gap.
        """
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
                    if on_match is not None:
                        on_match()
                    return ExpectMatch(i, m, before, compiled[i].pattern)
                if death is not None:
                    self._raise_death(death)
                if self._state == "dead":
                    raise self._infra(f"console connection dead ({self._dead_reason}); log: {self.log_path}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if self._drops != drops_at_start or (self._state != "open" and raise_timeout):
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
            self._phase = "booting"  # the last boot's phase is stale: no login nudge may reach the bootloader

    def drain(self) -> str:
        """Drop (and return) console text not yet consumed by expect."""
        with self._cond:
            text = self._text
            self._consume(self._text_base + len(self._text))
            return text

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
