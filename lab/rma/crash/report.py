"""What the crash finder returns: one report's title, kind, guilty frame and how much to trust it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Header:
    """A line that starts a crash report, as a title rule read it.

    ``base`` is the title without its guilty function (``"general protection fault"``); the finder
    appends ``" in F"``. ``func`` is a function the header itself names (KASAN, WARNING).
    ``use_pc``: the faulting PC names the crash. ``needs_func``: without a function the report is
    corrupted (cut off before its stack). ``stack_after``: the crash stack starts after a line
    beginning with this text (lockdep prints other stacks first). ``generic``: the line only says
    an earlier crash happened (``Kernel panic - not syncing: Fatal exception``).
    """

    kind: str
    base: str
    func: str | None = None
    use_pc: bool = False
    needs_func: bool = True
    stack_after: str | None = None
    generic: bool = False
    memory: bool = False
    alternatives: tuple[str, ...] = ()
    final: str | None = None  # a complete title: no function is appended


@dataclass(frozen=True)
class CrashReport:
    """The first crash report of a log.

    ``corrupted``: the report was cut off (or garbled) before what names the bug: it is titled but
    must never merge with a complete report of another bug. ``frames`` are the candidate frames in
    order (skip list applied), ``line`` the 0-based line of the header in the log. ``evidence``: the
    header and the lines after it, kept for a corrupted report so that two corrupted reports only
    share a fingerprint when what is left of them reads the same.
    """

    kind: str
    title: str
    guilty: str | None
    corrupted: bool
    alternatives: tuple[str, ...] = ()
    frames: tuple[str, ...] = field(default=(), compare=False)
    line: int = field(default=0, compare=False)
    evidence: tuple[str, ...] = field(default=(), compare=False)  # a corrupted report's own first lines
