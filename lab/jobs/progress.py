"""Progress of a running job: one line per rig (current test, passed/failed/errors, elapsed).

On a terminal the lines are redrawn in place (rich ``Live``); elsewhere (CI logs, pipes) a rig's
line is printed each time one of its tests finishes. Text from the box (test ids, reasons) goes
through :func:`lab.textsafe.for_terminal`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.live import Live
from rich.table import Table

from lab.outcome import Outcome
from lab.textsafe import for_terminal


@dataclass
class RigProgress:
    """What is known about one rig's run so far."""

    rig: str
    planned: int
    started: float
    current: str | None = None
    done: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    state: str = "running"

    def add(self, outcome: Outcome) -> None:
        """Count a finished test."""
        self.done += 1
        self.current = None
        if outcome is Outcome.PASSED:
            self.passed += 1
        elif outcome is Outcome.DEVICE_FAULT:
            self.failed += 1
        elif outcome is not Outcome.SKIPPED:
            self.errors += 1

    def line(self) -> str:
        """``stb-a  3/16  2 passed 1 failed 0 errors  00:42  test_zapping.py::test_zap``."""
        elapsed = int(time.monotonic() - self.started)
        idle = "finishing" if self.state == "running" and self.done >= self.planned else self.state
        what = self.current.rsplit("/", 1)[-1] if self.current else idle
        return (
            f"{self.rig}  {self.done}/{self.planned}  {self.passed} passed {self.failed} failed {self.errors} errors"
            f"  {elapsed // 60:02d}:{elapsed % 60:02d}  {what}"
        )


class Progress:
    """Shows the rigs' progress lines; a context manager around the job's run."""

    def __init__(self, rigs: list[RigProgress], echo: Callable[[str], object] | None = None) -> None:
        self.rigs = {r.rig: r for r in rigs}
        self.console = Console(stderr=False, highlight=False)
        self.echo = echo
        self.live: Live | None = None

    def _table(self) -> Table:
        table = Table.grid(padding=(0, 1))
        for r in self.rigs.values():
            table.add_row(for_terminal(r.line(), limit=200))
        return table

    def __enter__(self) -> Progress:
        if self.echo is None and self.console.is_terminal:
            self.live = Live(self._table(), console=self.console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self._table())
            self.live.__exit__(None, None, None)
            self.live = None

    def changed(self, rig: str, *, finished_test: bool = False) -> None:
        """Redraw (terminal) or print the rig's line when a test finished (elsewhere)."""
        if self.live is not None:
            self.live.update(self._table())
        elif finished_test or self.rigs[rig].state != "running":
            line = "  " + for_terminal(self.rigs[rig].line(), limit=300, markup=False)
            (self.echo or print)(line)

    def tick(self) -> None:
        """Refresh elapsed times (terminal only)."""
        if self.live is not None:
            self.live.update(self._table())


__all__ = ["Progress", "RigProgress"]
