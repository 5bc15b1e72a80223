"""End-of-session summary: every test's :class:`~lab.outcome.Outcome`, new vs known faults with their
ids, infra errors, test errors, timed-out tests.

Built from the test reports' ``user_properties`` (so it also works under pytest-xdist, where
reports travel from the workers to the controller), printed at the end of the terminal output
and written to ``<run_dir>/summary.json`` and ``summary.md`` for the main job and CI.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lab.outcome import ExitCode, Outcome, exit_code_for
from lab.textsafe import for_markdown

# The entry kinds are the Outcome values (one spelling in the summary, JUnit, Allure and the database).
DEVICE_FAULT, INFRA_ERROR, TEST_ERROR = Outcome.DEVICE_FAULT.value, Outcome.INFRA_ERROR.value, Outcome.TEST_ERROR.value
TIMED_OUT = Outcome.TIMED_OUT.value
_PHASE_ORDER = {"setup": 0, "call": 1, "teardown": 2}


@dataclass
class TestRecord:
    """How one test ended: its outcome (first phase that did not pass decides), duration, the reason,
    the instrument (infra), the fault it filed and where its evidence is."""

    __test__ = False

    nodeid: str
    outcome: str = Outcome.PASSED.value
    duration: float = 0.0
    reason: str = ""
    rig: str | None = None
    instrument: str | None = None
    fault_id: Any = None
    fault_new: bool | None = None
    evidence: list[str] = field(default_factory=list)
    reproduction: str | None = None
    decided: bool = False  # a phase that did not pass has set the outcome

    def add(self, report: Any) -> None:
        """Fold one phase's report (setup, call, teardown) into the record."""
        props = dict(getattr(report, "user_properties", ()) or ())
        self.duration += float(getattr(report, "duration", 0.0) or 0.0)
        self.rig = self.rig or (str(props["rig"]) if props.get("rig") else None)
        if props.get("evidence") and str(props["evidence"]) not in self.evidence:
            self.evidence.append(str(props["evidence"]))
        if props.get("reproduction"):
            self.reproduction = str(props["reproduction"])
        if self.decided or report.passed:
            return
        self.decided = True
        if report.skipped:
            self.outcome = Outcome.SKIPPED.value
            longrepr = getattr(report, "longrepr", None)
            self.reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else "skipped"
            return
        kind = props.get("stblab_outcome")
        # A failure the plugin did not classify is never a device fault: nothing named the fault.
        self.outcome = str(kind) if kind in {o.value for o in Outcome} else Outcome.TEST_ERROR.value
        self.reason = str(props.get("stblab_reason") or _first_line(report))
        self.instrument = props.get("instrument") or None
        self.fault_id = props.get("fault_id")
        self.fault_new = props.get("fault_new")


def _first_line(report: Any) -> str:
    text = str(getattr(report, "longrepr", "") or "").strip().splitlines()
    line = next((x for x in reversed(text) if x.startswith("E ")), text[-1] if text else "failed")
    return line.removeprefix("E ").strip()[:300]


@dataclass
class Entry:
    """One test outcome worth a line in the summary."""

    nodeid: str
    kind: str
    reason: str
    rig: str | None = None
    instrument: str | None = None
    fault_id: Any = None
    fault_new: bool | None = None
    reproduction: str | None = None
    firmware_version: str | None = None


@dataclass
class SessionSummary:
    """Counts and notable outcomes of one session."""

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    entries: list[Entry] = field(default_factory=list)
    rigs: dict[str, dict[str, str]] = field(default_factory=dict)
    tests: dict[str, TestRecord] = field(default_factory=dict)
    events: Path | None = None  # a JSON-lines file: one line per test started and per test finished

    def _event(self, data: dict[str, Any]) -> None:
        if self.events is not None:
            with self.events.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(data, default=str) + "\n")

    def test_started(self, nodeid: str) -> None:
        """Note that ``nodeid`` started (the job runner shows it, and blames a hang on it)."""
        import time

        self._event({"event": "start", "nodeid": nodeid, "t": time.time()})

    def test_finished(self, nodeid: str) -> None:
        """Note that ``nodeid`` finished (all its phases are in the record)."""
        rec = self.tests.get(nodeid)
        if rec is not None:
            self._event({"event": "result", **_record_dict(rec)})

    def add_report(self, report: Any) -> None:
        """Count a ``TestReport`` and keep its stblab outcome, if any."""
        props = dict(getattr(report, "user_properties", ()) or ())
        if getattr(report, "when", None) in _PHASE_ORDER:
            self.tests.setdefault(report.nodeid, TestRecord(report.nodeid)).add(report)
        if report.when == "call" or (report.when != "call" and not report.passed):
            if report.passed and report.when == "call":
                self.passed += 1
            elif report.skipped:
                self.skipped += 1
            elif report.failed:
                if report.when == "call":
                    self.failed += 1
                else:
                    self.errors += 1
        rig = props.get("rig")
        if rig:
            known = self.rigs.setdefault(str(rig), {})
            for key in ("model", "firmware_version", "device_serial"):
                if props.get(key):
                    known[key] = str(props[key])
        kind = props.get("stblab_outcome")
        if kind and not report.passed:
            self.entries.append(
                Entry(
                    nodeid=report.nodeid,
                    kind=str(kind),
                    reason=str(props.get("stblab_reason", "")),
                    rig=props.get("rig"),
                    instrument=props.get("instrument"),
                    fault_id=props.get("fault_id"),
                    fault_new=props.get("fault_new"),
                    reproduction=props.get("reproduction"),
                    firmware_version=props.get("firmware_version"),
                )
            )

    def add_collect_error(self, nodeid: str, reason: str) -> None:
        """A test file that could not be collected: the suite is wrong, so the run is not a pass."""
        self.errors += 1
        self.entries.append(Entry(nodeid=nodeid or "collection", kind=TEST_ERROR, reason=reason))
        self._event({"event": "collect_error", "nodeid": nodeid or "collection", "reason": reason})

    def outcomes(self) -> list[Outcome]:
        """Every test's outcome plus a test error per file that did not collect."""
        out = [Outcome(r.outcome) for r in self.tests.values()]
        return out + [Outcome.TEST_ERROR for e in self.entries if e.kind == TEST_ERROR and e.nodeid not in self.tests]

    def exit_code(self) -> ExitCode:
        """The session's exit code from the shared table (no tests at all is not a pass)."""
        return exit_code_for(self.outcomes())

    def of_kind(self, kind: str) -> list[Entry]:
        """The entries of one outcome kind (``device-fault``, ``infra-error``, ``test-error``)."""
        return [e for e in self.entries if e.kind == kind]

    def exit_kind(self) -> str:
        """``ok`` or the name of the session's exit code (``device_fault``, ``infra_error``, ...)."""
        code = self.exit_code()
        return "ok" if code is ExitCode.OK else code.name.lower()

    def lines(self) -> list[str]:
        """Human summary, one line per notable outcome."""
        out = [f"{self.passed} passed, {self.failed} failed, {self.errors} errors, {self.skipped} skipped"]
        for rig, info in sorted(self.rigs.items()):
            out.append(f"rig {rig}: " + ", ".join(f"{k}={v}" for k, v in info.items()))
        faults = self.of_kind(DEVICE_FAULT)
        new = [e for e in faults if e.fault_new]
        known = [e for e in faults if e.fault_id is not None and not e.fault_new]
        unfiled = [e for e in faults if e.fault_id is None]
        for title, group in (("new faults", new), ("known faults", known), ("device faults not filed", unfiled)):
            if group:
                out.append(f"{title}:")
                for e in group:
                    fid = f"fault #{e.fault_id} " if e.fault_id is not None else ""
                    rep = f" [reproduced {e.reproduction}]" if e.reproduction else ""
                    out.append(f"  {fid}{e.nodeid} on {e.rig}: {e.reason}{rep}")
        timed = [r for r in self.tests.values() if r.outcome == TIMED_OUT]
        if timed:
            out.append("timed out (the lab's problem, not filed against the box):")
            out += [f"  {r.nodeid} on {r.rig}: {r.reason}" for r in timed]
        infra = self.of_kind(INFRA_ERROR)
        if infra:
            out.append("infra errors (not filed against the box):")
            out += [f"  {e.nodeid} on {e.rig} ({e.instrument or '?'}): {e.reason}" for e in infra]
        terr = self.of_kind(TEST_ERROR)
        if terr:
            out.append("test errors (the scenario is wrong):")
            out += [f"  {e.nodeid}: {e.reason}" for e in terr]
        return out

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data, with the session's outcome kind."""
        return {
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "skipped": self.skipped,
            "outcome": self.exit_kind(),
            "rigs": self.rigs,
            "entries": [asdict(e) for e in self.entries],
            "tests": [_record_dict(r) for r in self.tests.values()],
        }

    def write(self, path: Path) -> None:
        """Write ``path`` (JSON) and the same summary as markdown beside it (``.md``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        md = ["# stblab session summary", ""] + [
            f"- {for_markdown(line)}" if not line.startswith(" ") else f"  {for_markdown(line.strip())}"
            for line in self.lines()
        ]
        path.with_suffix(".md").write_text("\n".join(md) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> SessionSummary:
        """Load a summary written by :meth:`write` (the main job merges one per rig)."""
        data = json.loads(path.read_text(encoding="utf-8"))
        s = cls(data["passed"], data["failed"], data["errors"], data["skipped"])
        s.entries = [Entry(**e) for e in data["entries"]]
        s.rigs = data.get("rigs", {})
        for t in data.get("tests", []):
            rec = TestRecord(**{k: v for k, v in t.items() if k in TestRecord.__dataclass_fields__})
            s.tests[rec.nodeid] = rec
        return s


def _record_dict(rec: TestRecord) -> dict[str, Any]:
    data = asdict(rec)
    data.pop("decided", None)
    return data


__all__ = ["DEVICE_FAULT", "INFRA_ERROR", "TEST_ERROR", "TIMED_OUT", "Entry", "SessionSummary", "TestRecord"]
