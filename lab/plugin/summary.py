"""End-of-session summary: new vs known faults with their ids, infra errors, test errors.

Built from the test reports' ``user_properties`` (so it also works under pytest-xdist, where
reports travel from the workers to the controller), printed at the end of the terminal output
and written to ``<run_dir>/summary.json`` and ``summary.md`` for the main job and CI.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lab.textsafe import for_markdown

DEVICE_FAULT, INFRA_ERROR, TEST_ERROR = "device-fault", "infra-error", "test-error"


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

    def add_report(self, report: Any) -> None:
        """Count a ``TestReport`` and keep its stblab outcome, if any."""
        props = dict(getattr(report, "user_properties", ()) or ())
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

    def of_kind(self, kind: str) -> list[Entry]:
        """The entries of one outcome kind (``device-fault``, ``infra-error``, ``test-error``)."""
        return [e for e in self.entries if e.kind == kind]

    def exit_kind(self) -> str:
        """``ok``, ``device-fault``, ``infra-error`` or ``test-error`` (infra outranks faults:
        a run whose lab failed cannot vouch for the rest)."""
        if self.of_kind(INFRA_ERROR):
            return INFRA_ERROR
        if self.of_kind(TEST_ERROR) or self.errors:
            return TEST_ERROR
        if self.of_kind(DEVICE_FAULT) or self.failed:
            return DEVICE_FAULT
        return "ok"

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
        }

    def write(self, path: Path) -> None:
        """Write ``path`` (JSON) and the same summary as markdown beside it (``.md``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        md = ["# stblab session summary", ""] + [  # box text rendered as text, never as HTML or links
            f"- {for_markdown(line)}" if not line.startswith(" ") else f"  - {for_markdown(line.strip())}"
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
        return s


__all__ = ["DEVICE_FAULT", "INFRA_ERROR", "TEST_ERROR", "Entry", "SessionSummary"]
