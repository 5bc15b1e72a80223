"""The typed result of a job: per rig, per test, the outcome with its evidence; plus what did not run.

Everything a policy decides (``stblab lab``'s exit code, the gate's "may ship", the warranty
check's "no fault found") and everything written (summary md/html, JUnit, ``job.json``) reads a
:class:`JobResult`; nobody re-reads pytest's output.

Example::

    result = run_job(spec)
    result.exit_code()          # ExitCode from lab.outcome's one table
    result.all_passed()         # every planned test on every planned rig ran and passed
    result.first_line()         # "stb-a: planned 16, run 16, passed 16, ... | stb-b: ..."
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lab.outcome import ExitCode, Outcome, exit_code_for, worst


@dataclass
class TestResult:
    """One planned test on one rig."""

    __test__ = False

    nodeid: str
    outcome: Outcome
    duration: float = 0.0
    reason: str = ""
    instrument: str | None = None
    evidence: list[str] = field(default_factory=list)
    fault_id: Any = None
    fault_new: bool | None = None
    reproduction: str | None = None

    @classmethod
    def from_event(cls, data: dict[str, Any]) -> TestResult:
        """From a ``result`` line of the plugin's events file."""
        return cls(
            nodeid=str(data["nodeid"]),
            outcome=Outcome(data.get("outcome", "test_error")),
            duration=float(data.get("duration") or 0.0),
            reason=str(data.get("reason") or ""),
            instrument=data.get("instrument") or None,
            evidence=[str(e) for e in data.get("evidence") or []],
            fault_id=data.get("fault_id"),
            fault_new=data.get("fault_new"),
            reproduction=data.get("reproduction"),
        )


@dataclass
class RigResult:
    """What one rig was planned to run and how each test ended."""

    rig: str
    planned: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)  # nodeid -> why (the rig lacks a feature)
    tests: list[TestResult] = field(default_factory=list)
    ended: str = "not started"  # "finished", "killed: <why>", "not started: <why>"
    exit_status: int | None = None
    info: dict[str, str] = field(default_factory=dict)  # model, firmware_version, device_serial
    log: str = ""
    junit: str = ""

    @property
    def finished(self) -> bool:
        """True when the rig's pytest ran to its end (not killed, not refused)."""
        return self.ended == "finished"

    def outcomes(self) -> list[Outcome]:
        """Every planned test's outcome (planned tests without a result are ``not_run``)."""
        return [t.outcome for t in self.tests]

    def count(self, *outcomes: Outcome) -> int:
        """How many of this rig's tests ended in one of ``outcomes``."""
        return sum(1 for t in self.tests if t.outcome in outcomes)

    def counts_line(self) -> str:
        """``stb-a: planned 16, run 15, passed 14, failed 1, errors 0, timed out 0, skipped 0, not run 1``."""
        run = len(self.tests) - self.count(Outcome.NOT_RUN)
        return (
            f"{self.rig}: planned {len(self.planned)}, run {run}, passed {self.count(Outcome.PASSED)}, "
            f"failed {self.count(Outcome.DEVICE_FAULT)}, "
            f"errors {self.count(Outcome.INFRA_ERROR, Outcome.TEST_ERROR)}, "
            f"timed out {self.count(Outcome.TIMED_OUT)}, skipped {self.count(Outcome.SKIPPED)}, "
            f"not run {self.count(Outcome.NOT_RUN)}"
        )

    def fill_not_run(self, reason: str) -> None:
        """Every planned test without a result becomes ``not_run`` with ``reason``."""
        have = {t.nodeid for t in self.tests}
        for nodeid in self.planned:
            if nodeid not in have:
                self.tests.append(TestResult(nodeid, Outcome.NOT_RUN, reason=reason))


@dataclass
class JobResult:
    """A whole job: its rigs' results, job-level problems and why it stopped early (if it did)."""

    run_dir: Path
    rigs: list[RigResult] = field(default_factory=list)
    problems: list[TestResult] = field(default_factory=list)  # job-level: e.g. the emulated lab did not start
    stopped: str | None = None  # "SIGTERM", "job time limit 600 s", ...
    elapsed: float = 0.0

    def rig(self, name: str) -> RigResult:
        """The result of rig ``name``."""
        return next(r for r in self.rigs if r.rig == name)

    def tests(self) -> list[tuple[str, TestResult]]:
        """(rig, test) for every planned test of every rig."""
        return [(r.rig, t) for r in self.rigs for t in r.tests]

    def outcomes(self) -> list[Outcome]:
        """Every test's outcome and every job-level problem's."""
        return [t.outcome for _, t in self.tests()] + [p.outcome for p in self.problems]

    def exit_code(self) -> ExitCode:
        """The job's exit code from lab.outcome's table (a stopped job is at best incomplete)."""
        code = exit_code_for(self.outcomes())
        return worst([code, ExitCode.INCOMPLETE]) if self.stopped else code

    def all_passed(self) -> bool:
        """True only when every planned rig finished and every planned test on it passed."""
        planned = [r for r in self.rigs if r.planned]  # a rig with every test left out has nothing to show
        return (
            not self.stopped
            and not self.problems
            and bool(planned)
            and all(r.finished and all(t.outcome.good for t in r.tests) for r in planned)
        )

    def first_line(self) -> str:
        """The summary's first line: planned/run/passed/failed/errors/timed out/not run per rig."""
        return " | ".join(r.counts_line() for r in self.rigs) or "no rigs"

    def of(self, *outcomes: Outcome) -> list[tuple[str, TestResult]]:
        """(rig, test) of the tests that ended in one of ``outcomes``."""
        return [(rig, t) for rig, t in self.tests() if t.outcome in outcomes]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready data (``job.json``)."""
        return {
            "run_dir": str(self.run_dir),
            "exit_code": int(self.exit_code()),
            "all_passed": self.all_passed(),
            "first_line": self.first_line(),
            "stopped": self.stopped,
            "elapsed": round(self.elapsed, 1),
            "problems": [asdict(p) for p in self.problems],
            "rigs": [asdict(r) for r in self.rigs],
        }

    def write(self, path: Path | None = None) -> Path:
        """Write ``job.json`` (default in the run folder); returns its path."""
        path = path or self.run_dir / "job.json"
        path.write_text(json.dumps(self.as_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        return path


__all__ = ["JobResult", "RigResult", "TestResult"]
