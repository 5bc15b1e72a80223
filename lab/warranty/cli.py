"""``stblab warranty``: receive a returned device, diagnose it, override or act on the verdict.

Example::

    stblab warranty receive --serial SN-SURGE01 --complaint "no picture after standby" --model STB-4K-X1
    stblab warranty check 1 --rig rma-surge --rigs rigs/warranty.yaml
    stblab rma case 1                       # the verdict and the evidence behind it
    stblab warranty override 1 --verdict manufacturing_defect --reason "surge log from a faulty PSU" --actor alice
    stblab warranty resolve 1 replace
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import traceback
from pathlib import Path

import typer

from lab.errors import DeviceFault, InfraError, RigFileError, TestError
from lab.outcome import ExitCode, exit_code_help
from lab.textsafe import for_terminal

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Warranty verdicts for returned devices.")
EXIT_DEVICE, EXIT_INFRA, EXIT_USAGE = ExitCode.DEVICE_FAULT, ExitCode.INFRA_ERROR, ExitCode.BAD_INPUT


def _store(db: str | None):  # noqa: ANN202
    from lab.rma import RmaStore

    return RmaStore.open(db)


@app.command()
def receive(
    serial: str = typer.Option(..., "--serial", help="device serial number"),
    complaint: str = typer.Option(..., "--complaint", help="the customer's complaint, in their words"),
    received: str | None = typer.Option(None, "--received", help="date received (YYYY-MM-DD; default today)"),
    model: str | None = typer.Option(None, "--model", help="device model"),
    db: str | None = typer.Option(None, "--db", "--rma-db", help="RMA database URL or SQLite path"),
    actor: str = typer.Option("warranty-desk", "--actor", help="who receives it"),
) -> None:
    """Open an RMA case for a returned device; prints the case id."""
    try:
        day = dt.date.fromisoformat(received) if received else dt.date.today()
    except ValueError:
        print(f"stblab warranty receive: --received {received!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE) from None
    with _store(db) as store:
        case_id = store.create_case(serial, complaint, day, model=model, actor=actor)
    typer.echo(case_id)


@app.command(epilog=exit_code_help())
def check(
    case: int = typer.Argument(..., help="RMA case id"),
    rig: str = typer.Option(..., "--rig", help="the rig the returned unit sits on"),
    rigs: str = typer.Option("rigs/warranty.yaml", "--rigs", help="rig file, or labgrid://HOST:PORT/?name=..."),
    reference: str | None = typer.Option(None, "--reference", help="reference rig (default: a 'reference' rig)"),
    runs: int = typer.Option(3, "--runs", min=1, max=10, help="scenario runs on the unit, stop at the first hit"),
    run_dir: Path | None = typer.Option(None, "--run-dir", help="default reports/warranty-<case>-<time>"),
    db: str | None = typer.Option(None, "--db", "--rma-db", help="RMA database URL or SQLite path"),
    emulate: str = typer.Option("auto", "--emulate", help="auto|always|never: start emulated rigs"),
    as_json: bool = typer.Option(False, "--json", help="print the verdict as JSON"),
    scenario: list[Path] = typer.Option([], "--scenario", help="diagnostic to run instead of the complaint's"),
    test_timeout: float | None = typer.Option(None, "--test-timeout", help="seconds per diagnostic (default 300)"),
    job_timeout: float | None = typer.Option(None, "--job-timeout", help="seconds for one run of the diagnostics"),
) -> None:
    """Collect evidence, run the matching scenarios (and on a reference unit), record the verdict.

    "No fault found" needs every required diagnostic to have run and passed; otherwise the check is
    inconclusive (the reason is stored, the case stays open) and exits with the table's code."""
    from lab.emulated_lab import EMULATE_MODES
    from lab.jobs import JobInputError
    from lab.warranty.check import check_case

    if emulate not in EMULATE_MODES:
        print(f"stblab warranty check: --emulate must be one of {', '.join(EMULATE_MODES)}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE)
    echo = (lambda *_: None) if as_json else typer.echo
    try:
        res = check_case(case, rig, rigs, reference=reference, rma_db=db, run_dir=run_dir, runs=runs,
                         emulate=emulate, echo=echo, scenarios=[str(s) for s in scenario] or None,
                         test_timeout=test_timeout, job_timeout=job_timeout)  # fmt: skip
    except (TestError, RigFileError, JobInputError) as exc:
        print(f"stblab warranty check: {for_terminal(exc, markup=False)}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE) from None
    except InfraError as exc:
        print(f"stblab warranty check: lab failure, no verdict: {for_terminal(exc, markup=False)}", file=sys.stderr)
        raise typer.Exit(EXIT_INFRA) from None
    except DeviceFault as exc:  # the unit failed while its evidence was read: a person looks at it
        print(
            f"stblab warranty check: the unit failed during diagnosis, no verdict: {for_terminal(exc, markup=False)}",
            file=sys.stderr,
        )
        raise typer.Exit(EXIT_DEVICE) from None
    except Exception:  # a bug in stblab: never exit 1 ("device fault")
        traceback.print_exc()
        print("stblab warranty check: internal error, no verdict", file=sys.stderr)
        raise typer.Exit(ExitCode.INTERNAL_ERROR) from None
    if res.inconclusive is not None or res.decision is None:
        if as_json:
            data = {"case": case, "verdict": "inconclusive", "reason": res.inconclusive,
                    "evidence_ids": res.evidence_ids, "exit_code": int(res.exit_code)}  # fmt: skip
            print(json.dumps(data, indent=2))
        else:
            typer.echo(f"case {case}: INCONCLUSIVE, no verdict; the case stays open")
            typer.echo(f"  {for_terminal(res.inconclusive, markup=False)}")
        raise typer.Exit(int(res.exit_code))
    d = res.decision
    if as_json:
        print(json.dumps({"case": case, "verdict": d.verdict.value, "rule": d.rule, "ruleset": d.ruleset,
                          "justification": d.justification, "needs_review": d.needs_review,
                          "verdict_id": res.verdict_id, "evidence_ids": res.evidence_ids}, indent=2))  # fmt: skip
        return
    typer.echo(f"case {case}: verdict {d.verdict.value.upper().replace('_', ' ')} ({d.ruleset}, {d.rule})")
    typer.echo(f"  {d.justification}")
    if d.needs_review:
        typer.echo("  review recommended before acting on it")
    typer.echo(f"  evidence rows: {', '.join(map(str, res.evidence_ids))}; `stblab rma case {case}` shows them")


@app.command()
def override(
    case: int = typer.Argument(..., help="RMA case id"),
    verdict: str = typer.Option(..., "--verdict", help="user_damage, firmware_defect, manufacturing_defect, ..."),
    reason: str = typer.Option(..., "--reason", help="why the person overrides the rules"),
    actor: str = typer.Option(..., "--actor", help="who overrides"),
    db: str | None = typer.Option(None, "--db", "--rma-db", help="RMA database URL or SQLite path"),
) -> None:
    """Override the current verdict with a person's decision (kept with its reason in the audit log)."""
    if not reason.strip():
        print("stblab warranty override: --reason must not be empty", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE)
    try:
        with _store(db) as store:
            vid = store.override_verdict(case, verdict, reason=reason, actor=actor)
    except (TestError, ValueError) as exc:
        print(f"stblab warranty override: {for_terminal(exc, markup=False)}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(f"case {case}: verdict {verdict} by {actor} (verdict #{vid} supersedes the previous one)")


@app.command()
def resolve(
    case: int = typer.Argument(..., help="RMA case id"),
    action: str = typer.Argument(..., help="repair, replace, refund or closed"),
    note: str = typer.Option("", "--note", help="a note for the audit log"),
    actor: str = typer.Option("warranty-desk", "--actor", help="who decides"),
    db: str | None = typer.Option(None, "--db", "--rma-db", help="RMA database URL or SQLite path"),
) -> None:
    """Move a diagnosed case on (repair, replace, refund) or close it."""
    try:
        with _store(db) as store:
            store.set_case_state(case, action, note=note, actor=actor)
    except (TestError, ValueError) as exc:
        print(f"stblab warranty resolve: {for_terminal(exc, markup=False)}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(f"case {case}: {action}")
