"""``stblab warranty check``: diagnose a returned device and record a verdict with its evidence.

The flow, for an RMA case (device serial, complaint, received date) and the rig the unit sits on:

1. the case moves to *diagnosing*; the unit on the rig must be the case's device (serial checked);
2. evidence is collected over SSH (``diag --json``; the console when SSH is down, which is itself
   noted) and the console (``dmesg``) and stored on the case;
3. the functional scenarios that match the complaint run on the unit (up to ``runs`` times, stop
   at the first hit), faults are filed as usual, and, where the lab has one, the same scenarios
   run on a reference unit of the same model and firmware;
4. :func:`lab.warranty.rules.decide` gives the verdict, stored with the evidence rows it used, the
   rule set's version and a justification; the case moves to *diagnosed*.

No verdict without evidence: the scenarios run as jobs (:mod:`lab.jobs`); when the complaint did not
reproduce and any required diagnostic did not run and pass (skipped, timed out, errored, not run),
the check is *inconclusive*: the reason is stored as evidence, no verdict is recorded, the case
stays open (*diagnosing*) and the command exits with the table's code for what went wrong.

Example::

    stblab warranty check 7 --rig rma-bench-1 --rigs rigs/warranty.yaml
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.emulated_lab import ensure_emulated
from lab.errors import DeviceFault, InfraError, TestError
from lab.outcome import ExitCode, Outcome
from lab.rig import Rig, load_rigs
from lab.warranty.evidence import EvidenceItem, evidence_from_diag, evidence_from_dmesg, indicators_from
from lab.warranty.rules import Decision, Findings, decide

REPO = Path(__file__).resolve().parents[2]

# complaint words -> scenario files that exercise them (first match wins per group; all groups add up)
COMPLAINT_SCENARIOS: list[tuple[tuple[str, ...], str]] = [
    (("black", "no picture", "no image", "no video", "standby", "resume", "wake"), "scenarios/test_standby.py"),
    (("freez", "frozen", "stuck", "zap", "channel", "picture stops"), "scenarios/test_zapping.py"),
    (("reboot", "restart", "crash", "turns off", "power cycle"), "scenarios/test_reboot.py"),
    (("boot", "dead", "does not start", "won't start"), "scenarios/test_boot.py"),
    (("update", "version", "ssh", "remote access"), "scenarios/test_agree.py"),
]


def scenarios_for(complaint: str) -> list[str]:
    """Scenario files matching the complaint's words (all of the boot and smoke suite if none match)."""
    text = complaint.lower()
    chosen = [path for words, path in COMPLAINT_SCENARIOS if any(w in text for w in words)]
    return chosen or [path for _, path in COMPLAINT_SCENARIOS]


@dataclass
class RunOutcome:
    """The scenarios' result on one unit."""

    rig: str
    runs: int = 0
    hits: int = 0
    faults: list[dict[str, Any]] = field(default_factory=list)
    infra: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)  # diagnostics that did not run and pass, with why
    exit_code: ExitCode = ExitCode.OK

    @property
    def reproduced(self) -> bool:
        return self.hits > 0


@dataclass
class WarrantyResult:
    """What the check decided for a case (``decision`` None: inconclusive, see ``inconclusive``)."""

    case_id: int
    decision: Decision | None
    evidence_ids: list[int]
    unit: RunOutcome
    reference: RunOutcome | None
    verdict_id: int | None
    inconclusive: str | None = None
    exit_code: ExitCode = ExitCode.OK


def run_scenarios(rig_file: Path, rig: str, paths: list[str], run_dir: Path, rma_db: str | None,
                  runs: int, test_timeout: float | None = None, job_timeout: float | None = None,
                  echo: Any = print) -> RunOutcome:  # fmt: skip
    """Run ``paths`` on ``rig`` up to ``runs`` times (one job each), stopping at the first device fault
    or at the first run whose diagnostics did not all run and pass."""
    from lab.jobs import JobSpec, run_job, write_all

    out = RunOutcome(rig=rig)
    suite = [p if Path(p).is_absolute() else str(REPO / p) for p in paths]
    for attempt in range(1, runs + 1):
        spec = JobSpec(rig_file=rig_file, rigs=[rig], suite=suite, run_dir=run_dir / rig, rma_db=rma_db,
                       test_timeout=test_timeout, job_timeout=job_timeout, label="warranty",
                       name=f"run{attempt}")  # fmt: skip
        job = run_job(spec, echo=echo, live=False)
        write_all(job, f"warranty diagnostics on {rig}, run {attempt}", label="warranty")
        out.runs = attempt
        tests = job.tests()
        faults = [t for _, t in tests if t.outcome is Outcome.DEVICE_FAULT]
        out.infra += [t.reason for _, t in tests if t.outcome is Outcome.INFRA_ERROR]
        out.infra += [p.reason for p in job.problems]
        if faults:
            out.hits += 1
            out.faults += [{"test": t.nodeid, "reason": t.reason, "fault_id": t.fault_id} for t in faults]
            break
        if not job.all_passed():
            out.incomplete += [f"{t.nodeid.rsplit('/', 1)[-1]} {t.outcome.value}: {t.reason}"
                               for _, t in tests if not t.outcome.good]  # fmt: skip
            out.incomplete += [f"{p.nodeid}: {p.reason}" for p in job.problems]
            if job.stopped:
                out.incomplete.append(f"the check was stopped ({job.stopped})")
            out.exit_code = job.exit_code()
            break
    return out


def reference_candidates(rigs: dict[str, Rig], unit: Rig) -> list[Rig]:
    """Rigs marked with the ``reference`` feature, of the unit's model (not the unit itself)."""
    return [r for r in rigs.values() if r.name != unit.name and r.model == unit.model and "reference" in r.features]


def _matching_reference(candidates: list[Rig], firmware: str, run: Path, echo: Any) -> Rig | None:
    """The first candidate reference unit running ``firmware`` (asked over its console)."""
    from lab.device import Stb

    for rig in candidates:
        try:
            with Stb(rig, run_dir=run / "reference") as stb:
                version = stb.firmware_version()
        except (InfraError, DeviceFault) as exc:
            echo(f"reference {rig.name} unavailable: {exc}")
            continue
        if version == firmware:
            return rig
        echo(f"reference {rig.name} runs {version}, the unit runs {firmware}: not comparable")
    return None


def collect_evidence(stb: Any) -> tuple[list[EvidenceItem], dict[str, Any]]:
    """Evidence from the unit: ``diag --json`` over SSH (console if SSH fails) and ``dmesg``."""
    items: list[EvidenceItem] = []
    stb.to("shell")
    try:
        stb.ssh.wait_for_reconnect(timeout=20)
        diag = stb.diag(via="ssh")
        source = "ssh: diag --json"
    except (InfraError, DeviceFault) as exc:
        stb.drop_ssh()
        items.append(EvidenceItem("ssh_unavailable", "lab: ssh", str(exc)[:500]))
        diag = stb.diag(via="console")
        source = "console: diag --json"
    items += evidence_from_diag(diag, source)
    items += evidence_from_dmesg(stb.kernel_log())  # the model's profile says how (dmesg on Linux boxes)
    return items, diag


def check_case(
    case_id: int,
    rig_name: str,
    rig_file: Path | str,
    *,
    reference: str | None = None,
    rma_db: str | None = None,
    run_dir: Path | None = None,
    runs: int = 3,
    emulate: str = "auto",
    actor: str = "warranty-check",
    scenarios: list[str] | None = None,
    test_timeout: float | None = None,
    job_timeout: float | None = None,
    echo: Any = print,
) -> WarrantyResult:
    """Diagnose case ``case_id`` on rig ``rig_name`` and record the verdict (see module docstring).

    ``rig_file`` may be a ``labgrid://`` URL: the places are held for the whole check, and a place lost
    before the verdict raises InfraError (no verdict recorded)."""
    from lab.jobs.rigsource import held_rigs

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_dir = (run_dir or REPO / "reports" / f"warranty-{case_id}-{stamp}").absolute()
    with held_rigs(rig_file, run_dir) as held:
        return _check_on(case_id, rig_name, held, reference=reference, rma_db=rma_db, run_dir=run_dir, runs=runs,
                         emulate=emulate, actor=actor, scenarios=scenarios, test_timeout=test_timeout,
                         job_timeout=job_timeout, echo=echo)  # fmt: skip


def _check_on(case_id: int, rig_name: str, held: Any, *, reference: str | None, rma_db: str | None,
              run_dir: Path, runs: int, emulate: str, actor: str, scenarios: list[str] | None,
              test_timeout: float | None, job_timeout: float | None, echo: Any) -> WarrantyResult:  # fmt: skip
    """:func:`check_case` on a rig file that is ours for the whole check (lab.jobs.rigsource.HeldRigs)."""
    rig_file = Path(held.rig_file).absolute()  # the scenarios run in the repository's folder, not this one
    rigs = load_rigs(rig_file)
    if rig_name not in rigs:
        raise TestError(f"no rig named {rig_name!r} in {rig_file} (have: {', '.join(rigs)})")
    unit = rigs[rig_name]
    if reference and reference not in rigs:
        raise TestError(f"no reference rig named {reference!r} in {rig_file}")
    candidates = [rigs[reference]] if reference else reference_candidates(rigs, unit)
    from lab.device import Stb  # the input is good: now the drivers and SQLAlchemy (~0.5 s to import)
    from lab.rma import RmaStore

    with RmaStore.open(rma_db) as store:  # closed on every way out, a refusal or a lab failure too
        case = store.case(case_id)
        if case is None:
            raise TestError(f"no RMA case with id {case_id}")
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        run = (run_dir or REPO / "reports" / f"warranty-{case_id}-{stamp}").absolute()
        run.mkdir(parents=True, exist_ok=True)
        if case["state"] in {"received", "diagnosed"}:
            store.set_case_state(case_id, "diagnosing", note=f"on rig {rig_name}", actor=actor)
        echo(f"case {case_id}: device {case['device']}, complaint {case['complaint']!r}; run folder {run}")
        db = rma_db  # the child resolves STBLAB_RMA_URL itself when None
        if store.url.get_backend_name() == "sqlite" and store.url.database and store.url.database != ":memory:":
            db = str(Path(store.url.database).absolute())  # a relative path must name the same file there

        with ensure_emulated(rig_file, [unit, *candidates], emulate, echo=echo):
            with Stb(unit, run_dir=run / "diagnose") as stb:
                serial = stb.serial_number()
                if serial != case["device"]:
                    raise TestError(f"rig {rig_name} holds device {serial}, not the case's device {case['device']}")
                items, diag = collect_evidence(stb)
            firmware = diag.get("firmware")
            unit_fw = str(firmware.get("version", "")) if isinstance(firmware, dict) else ""
            evidence_ids = [
                store.add_evidence(case_id, kind=i.kind, source=i.source, value=i.value, actor=actor,
                                   detail={"indicator": i.indicator.__dict__} if i.indicator else None)
                for i in items
            ]  # fmt: skip
            paths = [str(Path(p).absolute()) for p in scenarios] if scenarios else scenarios_for(case["complaint"])
            echo(f"case {case_id}: running {', '.join(Path(p).name for p in paths)} on {rig_name} (up to {runs} runs)")
            limits = {"test_timeout": test_timeout, "job_timeout": job_timeout, "echo": echo}
            unit_run = run_scenarios(rig_file, rig_name, paths, run, db, runs, **limits)
            if not unit_run.reproduced and unit_run.incomplete:
                return _inconclusive(store, case_id, rig_name, run, unit_run, evidence_ids, actor)
            ref_run: RunOutcome | None = None
            ref = _matching_reference(candidates, unit_fw, run, echo) if unit_run.reproduced else None
            if ref is not None:
                echo(f"case {case_id}: running the same scenarios on reference unit {ref.name}")
                ref_run = run_scenarios(rig_file, ref.name, paths, run, db, runs, **limits)
                if ref_run.infra or (not ref_run.reproduced and ref_run.incomplete):
                    why = (ref_run.infra or ref_run.incomplete)[0]
                    echo(f"case {case_id}: reference unit did not run its diagnostics: {why}")
                    ref_run = None

        for f in unit_run.faults:
            fid = f" (fault #{f['fault_id']})" if f["fault_id"] is not None else ""
            evidence_ids.append(store.add_evidence(case_id, kind="functional_fault", source=f"scenario {f['test']}",
                                                   value=f"{f['reason']}{fid}", actor=actor))  # fmt: skip
        summary = f"{unit_run.hits} of {unit_run.runs} runs reproduced the complaint on the unit"
        evidence_ids.append(store.add_evidence(case_id, kind="reproduction", source=f"rig {rig_name}", value=summary,
                                               actor=actor))  # fmt: skip
        if ref_run is not None:
            rsum = f"{ref_run.hits} of {ref_run.runs} runs reproduced it on reference unit {ref_run.rig}"
            evidence_ids.append(store.add_evidence(case_id, kind="reference_reproduction", source=f"rig {ref_run.rig}",
                                                   value=rsum, actor=actor))  # fmt: skip
        findings = Findings(
            reproduced=unit_run.reproduced,
            reproduced_on_reference=None if ref_run is None else ref_run.reproduced,
            indicators=indicators_from(items),
            faults=sorted({f["reason"].splitlines()[0][:120] for f in unit_run.faults}),
        )
        held.check()  # a place lost meanwhile: InfraError, no verdict on a unit that was not ours throughout
        decision = decide(findings)
        verdict_id = store.record_verdict(
            case_id,
            decision.verdict.value,
            rule_set_version=decision.ruleset,
            justification=f"[{decision.rule}] {decision.justification}",
            evidence_ids=evidence_ids,
            actor=actor,
        )
        store.set_case_state(case_id, "diagnosed", note=f"verdict {decision.verdict.value}", actor=actor)
        (run / "verdict.json").write_text(
            json.dumps({"case": case_id, "verdict": decision.verdict.value, "rule": decision.rule,
                        "ruleset": decision.ruleset, "justification": decision.justification,
                        "needs_review": decision.needs_review, "evidence_ids": evidence_ids}, indent=2),
            encoding="utf-8",
        )  # fmt: skip
    return WarrantyResult(case_id, decision, evidence_ids, unit_run, ref_run, verdict_id)


def _inconclusive(store: Any, case_id: int, rig: str, run: Path, unit_run: RunOutcome, evidence_ids: list[int],
                  actor: str) -> WarrantyResult:  # fmt: skip
    """No verdict: a required diagnostic did not run and pass. The reason is kept, the case stays open."""
    reason = "required diagnostics did not run and pass: " + "; ".join(unit_run.incomplete[:5])
    evidence_ids.append(store.add_evidence(case_id, kind="inconclusive", source=f"rig {rig}", value=reason[:2000],
                                           actor=actor))  # fmt: skip
    code = unit_run.exit_code if unit_run.exit_code is not ExitCode.OK else ExitCode.INCOMPLETE
    (run / "verdict.json").write_text(
        json.dumps({"case": case_id, "verdict": "inconclusive", "reason": reason, "exit_code": int(code),
                    "evidence_ids": evidence_ids}, indent=2),
        encoding="utf-8",
    )  # fmt: skip
    return WarrantyResult(case_id, None, evidence_ids, unit_run, None, None, inconclusive=reason, exit_code=code)
