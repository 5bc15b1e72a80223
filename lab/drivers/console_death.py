"""Death strings: how a dying box announces itself on its console, and the watcher that spots them.

A :class:`DeathWatch` is fed the console text as it arrives (any chunking) and records a
:class:`DeathEvent` for each line matching a death string (kernel panic, Oops, watchdog reset, OOM
kill, segfault by default; configurable), with the lines before it and the call trace after it
as evidence. One crash is one *incident*: death lines within ``incident_window`` seconds of a
reported one (the panic after the Oops, the watchdog reset after the panic) are recorded but
marked as already reported. The watcher is not thread-safe: the console calls it under its lock.

Example::

    watch = DeathWatch()
    watch.feed("[ 42.0] Kernel panic - not syncing: Fatal exception\\r\\n", 0, 0)
    ev = watch.pending()
    print(ev.symptom, ev.excerpt())      # kernel-panic ...
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lab.errors import DeviceFault

#: symptom -> regex; what a dying box prints.
DEFAULT_DEATH_STRINGS: dict[str, str] = {
    "kernel-panic": r"Kernel panic - not syncing",
    "kernel-oops": r"Internal error: Oops",
    "watchdog-reset": r"watchdog\S*: .*\breset\b|[Ww]atchdog reset",
    "oom-kill": r"Out of memory: Kill(?:ed)? process",
    "segfault": r"segfault at [0-9a-fA-F]",
}

CONTEXT_BEFORE = 12  # lines kept before a death line
CONTEXT_AFTER = 40  # lines collected after it (the call trace)
_MAX_PARTIAL = 4096


@dataclass
class DeathEvent:
    """A death string seen on the console: when, what, and the lines around it."""

    symptom: str
    line: str
    time: float
    text_pos: int  # absolute position of the line start in the console text stream
    log_offset: int  # console log offset of the chunk it came in (for ConsoleLog.since)
    before: list[str]
    after: list[str] = field(default_factory=list)
    raised: bool = False  # reported to a caller (or folded into an incident already reported)

    def excerpt(self) -> str:
        """The evidence: lines before, the death line, the lines after."""
        return "\n".join([*self.before, self.line, *self.after])


class ConsoleDeath(DeviceFault):
    """A death string appeared on the console (kernel panic, Oops, watchdog reset, OOM kill, segfault)."""

    def __init__(self, event: DeathEvent, *, rig: str | None, log_path: object = None) -> None:
        self.event = event
        self.log_path = log_path
        msg = f"box died on the console ({event.symptom}): {event.line.strip()}"
        if log_path:
            msg += f" [console log: {log_path}]"
        evidence: dict[str, object] = {
            "console_log": str(log_path) if log_path else None,
            "log_offset": event.log_offset,
        }
        super().__init__(msg, rig=rig, symptom=event.symptom, excerpt=event.excerpt(), evidence=evidence)


def death_table(death_strings: Mapping[str, str] | Sequence[str] | None) -> list[tuple[str, re.Pattern[str]]]:
    """``(symptom, regex)`` pairs from a mapping, a list of regexes (symptom derived), or the defaults."""
    if death_strings is None:
        death_strings = DEFAULT_DEATH_STRINGS
    if isinstance(death_strings, Mapping):
        items = list(death_strings.items())
    else:
        items = []
        for text in death_strings:
            known = next((s for s, rx in DEFAULT_DEATH_STRINGS.items() if rx == text), None)
            slug = known or re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "death-string"
            items.append((slug, text))
    table = []
    for symptom, rx in items:
        try:
            table.append((symptom, re.compile(rx)))
        except (re.error, TypeError) as exc:
            raise ValueError(f"death string {rx!r} ({symptom}) is not a regular expression: {exc}") from None
    return table


class DeathWatch:
    """Spots death strings in a console text stream (see the module docstring)."""

    def __init__(
        self, death_strings: Mapping[str, str] | Sequence[str] | None = None, *, incident_window: float = 10.0
    ) -> None:
        self.table = death_table(death_strings)
        self.incident_window = incident_window
        self.events: list[DeathEvent] = []
        self.suppressed = 0  # > 0: record but do not report (a crash is the test's point)
        self._incident_at: float | None = None
        try:  # one search over a whole chunk tells whether any line needs a closer look
            self._any: re.Pattern[str] | None = re.compile("|".join(f"(?:{rx.pattern})" for _, rx in self.table))
        except re.error:
            self._any = None
        self._partial = ""  # the unfinished last line
        self._partial_fired = False
        self._line_start = 0
        self._recent: deque[str] = deque(maxlen=CONTEXT_BEFORE)
        self._collecting: list[DeathEvent] = []

    def feed(self, text: str, start_abs: int, log_offset: int) -> None:
        """Take the next piece of console text (``start_abs``: its position in the whole stream)."""
        if not self._collecting and self._any is not None and not self._any.search(self._partial + text):
            # fast path: no death string anywhere in this chunk; only keep the recent lines for context
            last_nl = text.rfind("\n")
            if last_nl < 0:
                self._partial = (self._partial + text)[-_MAX_PARTIAL:]
                return
            pieces = (self._partial + text[:last_nl]).rsplit("\n", CONTEXT_BEFORE)
            self._recent.extend(line.rstrip("\r") for line in pieces[-CONTEXT_BEFORE:])
            self._line_start = start_abs + last_nl + 1
            self._partial, self._partial_fired = text[last_nl + 1 :][-_MAX_PARTIAL:], False
            return
        pos = 0
        while True:
            nl = text.find("\n", pos)
            if nl < 0:
                break
            line = (self._partial + text[pos:nl]).rstrip("\r")
            fired, line_abs = self._partial_fired, self._line_start
            self._partial, self._partial_fired = "", False
            self._line_start = start_abs + nl + 1
            pos = nl + 1
            for ev in self._collecting:
                if ev.text_pos == line_abs:
                    ev.line = line  # its own line, seen unfinished before: now complete
                else:
                    ev.after.append(line)
            self._collecting = [ev for ev in self._collecting if len(ev.after) < CONTEXT_AFTER]
            if not fired:
                self._check(line, line_abs, log_offset)
            self._recent.append(line)
        self._partial = (self._partial + text[pos:])[-_MAX_PARTIAL:]
        if self._partial and not self._partial_fired and self._check(self._partial, self._line_start, log_offset):
            self._partial_fired = True  # a box that dies mid-line is seen before the newline

    def _check(self, line: str, line_abs: int, log_offset: int) -> bool:
        for symptom, rx in self.table:
            if rx.search(line):
                ev = DeathEvent(symptom, line, time.time(), line_abs, log_offset, list(self._recent))
                in_incident = (
                    self._incident_at is not None and time.monotonic() - self._incident_at < self.incident_window
                )
                if self.suppressed or in_incident:
                    ev.raised = True  # part of a crash already reported (e.g. the watchdog reset after a panic)
                self.events.append(ev)
                self._collecting.append(ev)
                return True
        return False

    def pending(self) -> DeathEvent | None:
        """The first event nobody has been told about yet."""
        return next((ev for ev in self.events if not ev.raised), None)

    def report_all(self) -> None:
        """Everything seen so far is reported; later death lines within the window are the same incident."""
        for ev in self.events:
            ev.raised = True
        self._incident_at = time.monotonic()

    def new_incident(self) -> None:
        """The box starts afresh (a new boot): the next death string is a new incident."""
        self._incident_at = None

    def clear(self) -> list[DeathEvent]:
        """Forget (mark reported) the events nobody was told about; returns them."""
        pending = [ev for ev in self.events if not ev.raised]
        for ev in pending:
            ev.raised = True
        return pending


__all__ = ["DEFAULT_DEATH_STRINGS", "ConsoleDeath", "DeathEvent", "DeathWatch", "death_table"]
