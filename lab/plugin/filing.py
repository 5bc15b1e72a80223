"""Device faults into the RMA database (lab.rma), and their reproduction as k of n reruns.

Only a :class:`~lab.errors.DeviceFault` is filed; infra errors and test errors never are. The
signature source is the console (a death string's excerpt: panic, oops, watchdog, OOM, segfault)
when there is one, else the failed check (scenario, check kind, target) -- never a raw score, so
the same bug on another rig, device or firmware meets the same fault.

Example::

    filer = FaultFiler(db_url=None)        # lab.rma's default database (reports/rma.sqlite)
    filed = filer.file(fault_context)      # -> FiledFault(fault_id=12, is_new=True, ...)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.errors import DeviceFault

_DEATH_MARKERS = ("Kernel panic", "Oops", "watchdog", "Out of memory", "segfault", "Call trace", "BUG:")


@dataclass
class FaultContext:
    """Everything known about one failed test on one rig, gathered by the plugin."""

    nodeid: str
    scenario: str
    fault: DeviceFault
    rig: str
    model: str
    device_serial: str | None
    firmware_version: str | None
    firmware_build: str | None
    seed: int
    params: dict[str, Any]
    network_profile: dict[str, Any] | None
    started: float
    ended: float
    console_text: str
    artifacts: dict[str, Path] = field(default_factory=dict)
    attempt: int = 0

    def occurrence_key(self) -> str:
        """Stable id of this occurrence, so a journal replay never files it twice."""
        raw = f"{self.rig}|{self.nodeid}|{self.started:.6f}|{self.attempt}"
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def check_descriptor(self) -> dict[str, Any]:
        """What a failed check was looking at: scenario, kind, target (no raw scores)."""
        ev = self.fault.evidence
        return {
            "scenario": self.scenario,
            "check": self.fault.symptom or "device-fault",
            "target": str(ev.get("target", "")),
        }

    def console_signature_text(self) -> str | None:
        """The console text to fingerprint when the box printed a death string, else None."""
        text = self.fault.excerpt or ""
        if any(m in text for m in _DEATH_MARKERS):
            return text
        return None


@dataclass(frozen=True)
class FiledFault:
    """What filing returned, in the plugin's terms."""

    fault_id: Any
    is_new: bool
    occurrence_id: Any
    status: str
    title: str | None = None
    journaled: bool = False


class FaultFiler:
    """Files device faults through :class:`lab.rma.RmaStore` (opened lazily, once per session).

    A database that cannot be reached does not lose the filing: lab.rma keeps it in its local
    journal (``FiledFault.journaled``) and replays it once the database is back.
    """

    def __init__(self, db_url: str | None = None, *, artifact_root: Path | None = None) -> None:
        self.db_url = db_url
        self.artifact_root = artifact_root
        self._store: Any = None

    def store(self) -> Any:
        """The :class:`lab.rma.RmaStore`, opened on first use."""
        if self._store is None:
            from lab.rma import RmaStore

            self._store = RmaStore(self.db_url, artifact_root=self.artifact_root)
        return self._store

    def report_for(self, ctx: FaultContext) -> Any:
        """Build lab.rma's :class:`~lab.rma.FaultReport` from the context."""
        from lab.rma import CheckDescriptor, FaultReport

        console_sig = ctx.console_signature_text()
        desc = ctx.check_descriptor()
        return FaultReport(
            rig=ctx.rig,
            device_serial=ctx.device_serial or f"unknown@{ctx.rig}",
            model=ctx.model,
            test_id=ctx.nodeid,
            firmware_version=ctx.firmware_version,
            firmware_build_id=ctx.firmware_build,
            params=ctx.params,
            seed=ctx.seed,
            network_profile=ctx.network_profile,
            outcome="device_fault",
            started=ctx.started,
            ended=ctx.ended,
            console_log=console_sig,
            check=None if console_sig else CheckDescriptor(desc["scenario"], desc["check"], desc["target"]),
            title=None,
            symptom=ctx.fault.symptom,
            message=ctx.fault.message.splitlines()[0][:500],
            excerpt=(ctx.fault.excerpt or "")[-4000:] or None,
            artifacts={k: str(v) for k, v in ctx.artifacts.items()},
            occurrence_key=ctx.occurrence_key(),
        )

    def file(self, ctx: FaultContext) -> FiledFault:
        """File one occurrence and say whether its fault is new or known."""
        result = self.store().file(self.report_for(ctx))
        return FiledFault(
            fault_id=result.fault_id,
            is_new=bool(result.is_new),
            occurrence_id=result.occurrence_id,
            status=str(result.status),
            title=result.title or None,
            journaled=bool(result.journaled),
        )

    def record_reproduction(self, filed: FiledFault, repro: Reproduction, ctx: FaultContext) -> None:
        """Store k of n for the fault, with the rig, firmware, seed and profile of the reruns."""
        if filed.fault_id is None:
            return
        profile = json.dumps(ctx.network_profile, sort_keys=True, default=str) if ctx.network_profile else None
        self.store().record_reproduction(
            filed.fault_id,
            repro.policy,
            rig=ctx.rig,
            firmware_version=ctx.firmware_version,
            seed=ctx.seed,
            network_profile=profile,
        )

    def close(self) -> None:
        """Close the store (a later filing opens it again)."""
        store, self._store = self._store, None
        if store is not None:
            store.close()


class Reproduction:
    """k of n reruns driven by lab.rma's :class:`~lab.rma.ReproductionPolicy` (syzbot: up to 10
    runs, stop at 3 hits, below 0.15 not reproducible); ``max_runs`` caps it lower (``--reproduce``)."""

    def __init__(self, max_runs: int) -> None:
        from lab.rma import ReproductionPolicy

        self.policy = ReproductionPolicy(max_runs=max(1, min(max_runs, 10)))

    def record(self, hit: bool) -> None:
        """Count one rerun (``hit``: the same fault appeared again)."""
        self.policy.record(hit)

    @property
    def done(self) -> bool:
        """True when the policy needs no more reruns."""
        return bool(self.policy.done)

    @property
    def hits(self) -> int:
        return int(self.policy.hits)

    @property
    def runs(self) -> int:
        return int(self.policy.runs)

    @property
    def verdict(self) -> str:
        return str(self.policy.verdict)

    def as_text(self) -> str:
        """``"k of n (verdict)"`` for reports."""
        return f"{self.hits} of {self.runs} ({self.verdict.replace('_', ' ')})"


def params_of(item: Any) -> dict[str, Any]:
    """The test's parameters (pytest.mark.parametrize), JSON-safe."""
    spec = getattr(item, "callspec", None)
    if spec is None:
        return {}
    return json.loads(json.dumps(dict(spec.params), default=str))


__all__ = ["FaultContext", "FaultFiler", "FiledFault", "Reproduction", "params_of"]
