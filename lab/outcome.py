"""One outcome vocabulary and one exit-code table for every part of stblab.

Every place that says how a test, a rig or a job ended uses :class:`Outcome`: the pytest plugin
(JUnit properties, Allure labels), the job result, the summaries, the RMA database and the web
app. Every ``stblab`` command exits with an :class:`ExitCode`; the README's table is
:data:`EXIT_CODE_TABLE`, and ``stblab --help`` prints it.

A verdict needs evidence: only ``passed`` is good. ``skipped``, ``not_run`` and ``timed_out`` are
never counted as a pass (the gate, the warranty check and the lab summary all read them as
"not shown to work").

Example::

    from lab.outcome import ExitCode, Outcome, exit_code_for

    outcomes = [Outcome.PASSED, Outcome.TIMED_OUT]
    exit_code_for(outcomes)          # ExitCode.INFRA_ERROR: a hung test is the lab's problem, not a pass
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum, StrEnum


class Outcome(StrEnum):
    """How one planned test on one rig ended (the value is what reports and the database store)."""

    PASSED = "passed"
    DEVICE_FAULT = "device_fault"  # the box misbehaved: a failed test, filed in the RMA database
    INFRA_ERROR = "infra_error"  # the lab failed (an instrument, the emulator, a lock): never filed
    TEST_ERROR = "test_error"  # the scenario is wrong: never filed
    SKIPPED = "skipped"  # ran but skipped itself at run time: not evidence of anything
    NOT_RUN = "not_run"  # planned, never started (rig lost, job stopped, not collected)
    TIMED_OUT = "timed_out"  # over its time limit: an infra outcome, never filed against the box

    @property
    def good(self) -> bool:
        """True only for ``passed``: the one outcome that is evidence the box works."""
        return self is Outcome.PASSED

    @property
    def is_infra(self) -> bool:
        """Outcomes that are the lab's problem (counted as infra errors in exit codes)."""
        return self in (Outcome.INFRA_ERROR, Outcome.TIMED_OUT)


class ExitCode(IntEnum):
    """What every ``stblab`` command exits with. The worst applicable code wins (see :func:`worst`)."""

    OK = 0  # everything planned ran and passed / the command did what was asked
    DEVICE_FAULT = 1  # a device fault was found (for `rma audit`: the database failed its check)
    INFRA_ERROR = 2  # the lab failed (instrument, emulator, lock, timed-out test): results not trustworthy
    TEST_ERROR = 3  # a scenario is wrong
    BAD_INPUT = 4  # bad input before anything ran: rig file, options, missing or untrusted image, empty selection
    INCOMPLETE = 5  # planned work did not run (skipped, not run, job stopped or over its time limit)
    INTERNAL_ERROR = 6  # a bug in stblab itself: no verdict


#: Which exit code wins when a job has several kinds of outcome: bad input first (nothing meaningful
#: ran), then a device fault (shown with evidence, so the answer is "no" whatever else happened),
#: then the lab's failures and wrong scenarios (no answer), then work that did not run.
_PRECEDENCE = (
    ExitCode.INTERNAL_ERROR,
    ExitCode.BAD_INPUT,
    ExitCode.DEVICE_FAULT,
    ExitCode.INFRA_ERROR,
    ExitCode.TEST_ERROR,
    ExitCode.INCOMPLETE,
    ExitCode.OK,
)

_BY_OUTCOME = {
    Outcome.PASSED: ExitCode.OK,
    Outcome.DEVICE_FAULT: ExitCode.DEVICE_FAULT,
    Outcome.INFRA_ERROR: ExitCode.INFRA_ERROR,
    Outcome.TIMED_OUT: ExitCode.INFRA_ERROR,
    Outcome.TEST_ERROR: ExitCode.TEST_ERROR,
    Outcome.SKIPPED: ExitCode.INCOMPLETE,
    Outcome.NOT_RUN: ExitCode.INCOMPLETE,
}


def worst(codes: Iterable[ExitCode]) -> ExitCode:
    """The exit code that wins among ``codes`` (``OK`` for none)."""
    present = set(codes)
    return next((code for code in _PRECEDENCE if code in present), ExitCode.OK)


def exit_code_for(outcomes: Iterable[Outcome]) -> ExitCode:
    """The exit code of a set of test outcomes. No outcomes at all is not a pass: ``INCOMPLETE``."""
    codes = [_BY_OUTCOME[Outcome(o)] for o in outcomes]
    return worst(codes) if codes else ExitCode.INCOMPLETE


#: The README's and ``stblab --help``'s table, generated from :class:`ExitCode`.
EXIT_CODE_TABLE: tuple[tuple[int, str, str], ...] = (
    (0, "ok", "everything planned ran and passed (gate: the build may ship; warranty: a verdict was stored)"),
    (1, "device fault", "the box misbehaved: faults found and filed (rma audit: tampering found)"),
    (2, "infra error", "the lab failed (instrument, emulator, lock lost, a test over its time limit)"),
    (3, "test error", "a scenario is wrong"),
    (4, "bad input", "rig file, options, missing/unreadable/untrusted image, a selection with no tests"),
    (5, "incomplete", "planned work did not run or was skipped (incl. an interrupted job); no verdict"),
    (6, "internal error", "a bug in stblab; no verdict"),
)


def exit_code_help() -> str:
    """The exit-code table as plain text (for ``--help`` epilogs)."""
    return "Exit codes: " + "; ".join(f"{code} {name}" for code, name, _ in EXIT_CODE_TABLE) + "."


__all__ = ["EXIT_CODE_TABLE", "ExitCode", "Outcome", "exit_code_for", "exit_code_help", "worst"]
