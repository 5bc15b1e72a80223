"""Device faults into the RMA database (lab.rma), and their reproduction as k of n reruns.

Only a :class:`~lab.errors.DeviceFault` is filed; infra errors and test errors never are. The
signature source is the console (a death string's excerpt: panic, oops, watchdog, OOM, segfault)
when there is one, else the failed check (scenario, check kind, target) -- never a raw score, so
the same bug on another rig, device or firmware meets the same fault.

Example::

    filer = FaultFiler(db_url=None)        # lab.rma's default database
    result = filer.file(fault_context)     # -> FiledFault(fault_id=12, is_new=True, ...)
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.errors import DeviceFault, InfraError

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


def _call_with_known(fn: Any, values: dict[str, Any]) -> Any:
    """Call ``fn`` (a class or function) with only the keyword arguments it accepts."""
    if dataclasses.is_dataclass(fn):
        names = {f.name for f in dataclasses.fields(fn)}
    else:
        names = set(inspect.signature(fn).parameters)
    return fn(**{k: v for k, v in values.items() if k in names})


class FaultFiler:
    """Files device faults through ``lab.rma.RmaStore`` (opened lazily, once per session)."""

    def __init__(self, db_url: str | None = None, *, artifact_root: Path | None = None) -> None:
        self.db_url = db_url
        self.artifact_root = artifact_root
        self._store: Any = None

    def store(self) -> Any:
        if self._store is None:
            from lab import rma

            opener = rma.RmaStore
            kwargs: dict[str, Any] = {}
            params = inspect.signature(opener).parameters
            if self.artifact_root is not None and "artifact_root" in params:
                kwargs["artifact_root"] = self.artifact_root
            self._store = opener(self.db_url, **kwargs) if self.db_url or "url" not in params else opener(**kwargs)
        return self._store

    def report_for(self, ctx: FaultContext) -> Any:
        """Build lab.rma's ``FaultReport`` from the context."""
        from lab.rma import FaultReport

        console_sig = ctx.console_signature_text()
        values: dict[str, Any] = {
            "rig": ctx.rig,
            "device_serial": ctx.device_serial,
            "serial": ctx.device_serial,
            "model": ctx.model,
            "firmware_version": ctx.firmware_version,
            "firmware": ctx.firmware_version,
            "build_id": ctx.firmware_build,
            "firmware_build_id": ctx.firmware_build,
            "test_id": ctx.nodeid,
            "params": ctx.params,
            "parameters": ctx.params,
            "seed": ctx.seed,
            "network_profile": ctx.network_profile,
            "profile": ctx.network_profile,
            "outcome": "device-fault",
            "started": ctx.started,
            "ended": ctx.ended,
            "console_log": console_sig if console_sig is not None else None,
            "console_text": console_sig,
            "check": None if console_sig is not None else ctx.check_descriptor(),
            "check_descriptor": None if console_sig is not None else ctx.check_descriptor(),
            "title": ctx.fault.message.splitlines()[0][:200],
            "message": str(ctx.fault),
            "symptom": ctx.fault.symptom,
            "artifacts": {k: str(v) for k, v in ctx.artifacts.items()},
            "occurrence_key": ctx.occurrence_key(),
            "key": ctx.occurrence_key(),
        }
        return _call_with_known(FaultReport, values)

    def file(self, ctx: FaultContext) -> FiledFault:
        """File one occurrence; a database that cannot be reached is lab.rma's journal's business."""
        try:
            report = self.report_for(ctx)
            result = self.store().file(report)
        except ImportError as exc:
            raise InfraError(f"RMA filing unavailable: {exc}", rig=ctx.rig, instrument="database") from exc
        return FiledFault(
            fault_id=getattr(result, "fault_id", None),
            is_new=bool(getattr(result, "is_new", False)),
            occurrence_id=getattr(result, "occurrence_id", None),
            status=str(getattr(result, "status", "")),
            title=getattr(result, "title", None),
            journaled=bool(getattr(result, "journaled", False)),
        )

    def record_reproduction(self, filed: FiledFault, hits: int, runs: int, verdict: str, ctx: FaultContext) -> None:
        """Store k of n for the fault (when lab.rma offers a way to)."""
        store = self.store()
        for name in ("record_reproduction", "set_reproduction", "reproduction"):
            fn = getattr(store, name, None)
            if callable(fn):
                values = {
                    "fault_id": filed.fault_id,
                    "hits": hits,
                    "k": hits,
                    "runs": runs,
                    "n": runs,
                    "verdict": verdict,
                    "rig": ctx.rig,
                    "seed": ctx.seed,
                    "firmware_version": ctx.firmware_version,
                    "network_profile": ctx.network_profile,
                    "test_id": ctx.nodeid,
                }
                _call_with_known(fn, values)
                return

    def close(self) -> None:
        store, self._store = self._store, None
        closer = getattr(store, "close", None)
        if callable(closer):
            closer()


class Reproduction:
    """k of n reruns, stopping per lab.rma's ``ReproductionPolicy`` (syzbot: 10 runs, 3 hits, 0.15)."""

    def __init__(self, max_runs: int) -> None:
        self.max_runs = max_runs
        self.hits = 0
        self.runs = 0
        self._policy: Any = None
        try:
            from lab.rma import ReproductionPolicy

            try:
                self._policy = ReproductionPolicy(max_runs=min(max_runs, 10))
            except TypeError:
                self._policy = ReproductionPolicy()
        except ImportError:
            self._policy = None

    def record(self, hit: bool) -> None:
        self.runs += 1
        self.hits += int(hit)
        if self._policy is not None:
            self._policy.record(hit)

    @property
    def done(self) -> bool:
        if self.runs >= self.max_runs:
            return True
        if self._policy is not None:
            return bool(self._policy.done)
        return self.hits >= 3 or self.runs >= 10

    @property
    def verdict(self) -> str:
        if self._policy is not None:
            v = self._policy.verdict
            return str(getattr(v, "value", v))
        if self.runs == 0:
            return "not-run"
        return "reproducible" if self.hits / self.runs >= 0.15 else "not-reproducible"

    def as_text(self) -> str:
        return f"{self.hits} of {self.runs} ({self.verdict})"


def params_of(item: Any) -> dict[str, Any]:
    """The test's parameters (pytest.mark.parametrize), JSON-safe."""
    spec = getattr(item, "callspec", None)
    if spec is None:
        return {}
    return json.loads(json.dumps(dict(spec.params), default=str))


__all__ = ["FaultContext", "FaultFiler", "FiledFault", "Reproduction", "params_of"]
