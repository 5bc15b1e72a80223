"""``stblab lab``: the main job -- emulated lab, scenario suite, report and RMA entries.

What it does, in order:

1. validates the rig file and writes a run copy of it under ``reports/<run>/rigs.yaml`` with each
   emulated rig's state folder and known_hosts inside the run folder (fresh devices every run)
   and each rig's firmware set by ``--firmware RIG=VERSION``. Without ``--firmware`` and with two
   or more emulated rigs, the last rig is switched to the first defective version of its defect
   catalogue, so one run shows a passing rig *and* filed faults (``--all-good`` turns that off);
2. starts ``stblab emulate`` for the emulated rigs;
3. runs the scenario suite (``scenarios/``; the network scenarios of ``scenarios/network`` only
   with ``--network``) as one job (:mod:`lab.jobs`): planned first (a selection with no tests is
   bad input), then one pytest process per rig, in parallel, under ``--test-timeout``,
   ``--rig-timeout`` and ``--job-timeout``; JUnit per rig, one Allure results folder, device faults
   filed into the RMA database;
4. writes ``summary.md``/``summary.html``/``junit.xml``/``job.json`` from the job's result and
   prints it; the first line counts planned, run, passed, failed, errors, timed out and not run per rig.

Exit codes: lab.outcome's table (``stblab --help``): 0 all passed, 1 device faults, 2 infra errors
(incl. timed out), 3 test errors, 4 bad input, 5 incomplete (not run, skipped, interrupted).

Example::

    stblab lab --rigs rigs/emulated.yaml
    stblab lab --rigs rigs/emulated.yaml --firmware stb-a=2.0.0 --firmware stb-b=2.2.0 --reproduce 3
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from lab.errors import InfraError, RigFileError
from lab.outcome import ExitCode, exit_code_help
from lab.rig import load_rigs, select_rigs
from lab.textsafe import for_terminal

REPO = Path(__file__).resolve().parents[1]

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0], no_args_is_help=False)


def parse_firmware(values: list[str], rigs: list[str]) -> dict[str, str]:
    """``["stb-b=2.1.0", "all=2.0.0"]`` -> ``{"stb-b": "2.1.0", ...}``; names checked against ``rigs``."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, version = value.partition("=")
        if not sep or not name or not version:
            raise RigFileError(f"--firmware {value!r}: expected RIG=VERSION (or all=VERSION)")
        from lab.firmware.version import FirmwareVersion

        try:
            FirmwareVersion(version)
        except ValueError as exc:
            raise RigFileError(f"--firmware {value!r}: {exc}") from exc
        if name == "all":
            out.update(dict.fromkeys(rigs, version))
        elif name not in rigs:
            raise RigFileError(f"--firmware {value!r}: no emulated rig named {name!r} (have: {', '.join(rigs)})")
        else:
            out[name] = version
    return out


def first_defective(emulate: dict[str, Any]) -> str | None:
    """The lowest firmware version that the rig's defect catalogue lists defects for."""
    from lab.firmware.version import FirmwareVersion

    defects = emulate.get("defects") or {}
    versions = [v for v, items in defects.items() if items and not any(d.get("kind") == "boot_fail" for d in items)]
    return str(min(versions, key=FirmwareVersion)) if versions else None


def _abs(base: Path, value: Any) -> Any:
    if isinstance(value, str) and value and "://" not in value:
        p = Path(os.path.expanduser(value))
        return str(p if p.is_absolute() else (base / p).resolve())
    return value


def derive_rig_file(
    rig_file: Path, run_dir: Path, firmware: dict[str, str], names: list[str] | None = None
) -> tuple[Path, dict[str, str]]:
    """Write ``run_dir/rigs.yaml``: the given rigs with paths made absolute, emulated rigs' state and
    known_hosts inside the run folder, and firmware versions overridden. Returns (path, firmware by rig)."""
    raw = yaml.safe_load(rig_file.read_text(encoding="utf-8"))
    base = rig_file.resolve().parent
    rigs_out = []
    chosen: dict[str, str] = {}
    for rig in raw["rigs"]:
        rig = json.loads(json.dumps(rig))  # deep copy (and YAML anchors resolved)
        if names is not None and rig.get("name") not in names:
            continue
        for section, key in (("ssh", "key"), ("ssh", "known_hosts"), ("ir", "remote")):
            if isinstance(rig.get(section), dict) and key in rig[section]:
                rig[section][key] = _abs(base, rig[section][key])
        fw_cfg = rig.get("firmware")
        if isinstance(fw_cfg, dict) and isinstance(fw_cfg.get("trusted_keys"), list):
            fw_cfg["trusted_keys"] = [_abs(base, k) for k in fw_cfg["trusted_keys"]]
        emu = rig.get("emulate")
        if isinstance(emu, dict):
            emu["state_dir"] = str(run_dir / "state" / rig["name"])
            emu["trusted_keys"] = [_abs(base, k) for k in emu.get("trusted_keys", [])]
            if isinstance(rig.get("ssh"), dict):
                rig["ssh"]["known_hosts"] = str(run_dir / "known_hosts")
            fw = emu.get("firmware") or {}
            fw = {"version": fw} if isinstance(fw, str) else dict(fw)
            if rig["name"] in firmware and firmware[rig["name"]] != fw.get("version"):
                fw = {"version": firmware[rig["name"]], "build_id": "b" + firmware[rig["name"]].replace(".", "")}
            emu["firmware"] = fw
            chosen[rig["name"]] = str(fw.get("version", "?"))
        rigs_out.append(rig)
    out = run_dir / "rigs.yaml"
    out.write_text(yaml.safe_dump({"rigs": rigs_out}, sort_keys=False), encoding="utf-8")
    load_rigs(out)  # validate what we wrote
    return out, chosen


def _limit(value: float | None, what: str) -> float | None:
    if value is not None and value < 0:
        raise RigFileError(f"{what} {value:g}: give a number of seconds >= 0")
    return value


TIMEOUT_HELP = "seconds per test (default: the plugin's 300; 0: none); over it the test is timed_out"


@app.command(epilog=exit_code_help())
def lab(
    rigs: Annotated[
        str, typer.Option("--rigs", help="rig file, or labgrid://HOST:PORT/?model=...&count=N (places held while run)")
    ] = "rigs/emulated.yaml",
    rig: Annotated[list[str] | None, typer.Option("--rig", help="rig name or selector (repeatable)")] = None,
    firmware: Annotated[
        list[str] | None, typer.Option("--firmware", help="RIG=VERSION or all=VERSION: firmware of emulated rigs")
    ] = None,
    all_good: Annotated[bool, typer.Option("--all-good", help="do not switch a rig to defective firmware")] = False,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="default reports/<UTC timestamp>")] = None,
    rma_db: Annotated[str | None, typer.Option("--rma-db", help="RMA database URL or SQLite path")] = None,
    reproduce: Annotated[int, typer.Option("--reproduce", help="rerun fault-finding tests up to N times")] = 0,
    suite: Annotated[list[str] | None, typer.Option("--suite", help="test paths (default: scenarios/)")] = None,
    network: Annotated[
        bool, typer.Option("--network/--no-network", help="include scenarios/network (needs root and namespaces)")
    ] = False,
    pytest_args: Annotated[str, typer.Option("--pytest-args", help="extra pytest arguments, one string")] = "",
    test_timeout: Annotated[float | None, typer.Option("--test-timeout", help=TIMEOUT_HELP)] = None,
    rig_timeout: Annotated[float | None, typer.Option("--rig-timeout", help="seconds per rig (default: none)")] = None,
    job_timeout: Annotated[float | None, typer.Option("--job-timeout", help="seconds for the whole job")] = None,
) -> None:
    """Run the scenario suite against the rigs of a rig file (or of labgrid places) and report (see module
    docstring)."""

    from lab.jobs.rigsource import held_rigs

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run = (run_dir or Path("reports") / stamp).absolute()
    with contextlib.ExitStack() as hold:  # a labgrid:// source is held until the command ends
        try:
            held = hold.enter_context(held_rigs(rigs, run))
        except RigFileError as exc:
            typer.echo(f"stblab lab: {for_terminal(exc, markup=False)}", err=True)
            raise typer.Exit(ExitCode.BAD_INPUT) from None
        except InfraError as exc:
            typer.echo(f"stblab lab: lab failure, no verdict: {for_terminal(exc, markup=False)}", err=True)
            raise typer.Exit(ExitCode.INFRA_ERROR) from None
        code = _lab_job(held, rig, firmware, all_good, run, rma_db, reproduce, suite, network, pytest_args,
                        test_timeout, rig_timeout, job_timeout)  # fmt: skip
    raise typer.Exit(code)


def _lab_job(held: Any, rig: list[str] | None, firmware: list[str] | None, all_good: bool, run: Path,
             rma_db: str | None, reproduce: int, suite: list[str] | None, network: bool, pytest_args: str,
             test_timeout: float | None, rig_timeout: float | None, job_timeout: float | None) -> int:  # fmt: skip
    """The body of ``stblab lab`` on a rig file that is ours for the whole call; returns the exit code."""
    from lab.jobs.spec import JobInputError, JobSpec

    rigs = held.rig_file
    try:
        all_rigs = load_rigs(rigs)
        chosen: list[str] = []
        for sel in rig or [None]:  # type: ignore[list-item]
            chosen += [r.name for r in select_rigs(all_rigs, sel) if r.name not in chosen]
        emulated = [n for n in chosen if all_rigs[n].emulated]
        plan = parse_firmware(list(firmware or []), emulated)
        if not firmware and not all_good and len(emulated) >= 2:
            raw = {r["name"]: r for r in yaml.safe_load(rigs.read_text(encoding="utf-8"))["rigs"]}
            bad = first_defective(raw[emulated[-1]].get("emulate") or {})
            if bad:
                plan[emulated[-1]] = bad
        try:
            extra = shlex.split(pytest_args)  # quoted arguments stay whole (-k "zap and not slow")
        except ValueError as exc:
            raise RigFileError(f"--pytest-args {pytest_args!r}: {exc}") from None
        for what, value in (("--test-timeout", test_timeout), ("--rig-timeout", rig_timeout),
                            ("--job-timeout", job_timeout)):  # fmt: skip
            _limit(value, what)
        run.mkdir(parents=True, exist_ok=True)
        derived, versions = derive_rig_file(rigs, run, plan, chosen)
    except RigFileError as exc:
        typer.echo(f"stblab lab: {exc}", err=True)
        raise typer.Exit(ExitCode.BAD_INPUT) from None
    # the job runner imports pytest and the plugin: only now that the input is known to be good
    from lab.jobs.report import lines, write_all
    from lab.jobs.result import TestResult
    from lab.jobs.runner import run_job
    from lab.outcome import Outcome

    suite_paths = [str(Path(s).absolute()) if Path(s).exists() else s for s in (suite or [str(REPO / "scenarios")])]
    if not suite and not network:
        suite_paths += ["--ignore", str(REPO / "scenarios" / "network")]
    typer.echo(f"stblab lab: run folder {run}")
    for name in chosen:
        note = " (defective firmware from the catalogue)" if name in plan and not firmware else ""
        typer.echo(f"  rig {name}: {all_rigs[name].model}, firmware {versions.get(name, 'as flashed')}{note}")
    spec = JobSpec(
        rig_file=derived, rigs=chosen, suite=suite_paths + extra, run_dir=run, rma_db=rma_db, reproduce=reproduce,
        test_timeout=test_timeout, rig_timeout=rig_timeout, job_timeout=job_timeout, emulate=emulated,
        label="stblab",
    )  # fmt: skip
    try:
        result = run_job(spec, echo=typer.echo)
    except JobInputError as exc:
        typer.echo(f"stblab lab: {exc}", err=True)
        raise typer.Exit(ExitCode.BAD_INPUT) from None
    except Exception:  # a bug in stblab: never exit 1, which reads as "device faults"
        traceback.print_exc()
        typer.echo("stblab lab: internal error, no verdict", err=True)
        raise typer.Exit(ExitCode.INTERNAL_ERROR) from None
    for name, why in sorted(held.lost().items()):  # a rig not ours for the whole run gives no verdict
        result.problems.append(TestResult(f"labgrid place {name}", Outcome.INFRA_ERROR, instrument="labgrid",
                                          reason=f"rig {name}: {why}"))  # fmt: skip
    write_all(result, f"stblab lab run {run.name}")
    typer.echo("")
    typer.echo(f"stblab lab summary ({result.elapsed:.0f} s)")
    for line in lines(result, "stblab lab"):
        typer.echo(f"  {for_terminal(line, markup=False)}")
    typer.echo(f"  report: {run / 'summary.md'} / summary.html / junit.xml / job.json; per rig {run}/<rig>/")
    typer.echo(f"  {allure_report_line(run)}")
    db = rma_db or str(Path("reports") / "rma.sqlite")
    typer.echo(f"  faults and evidence in a browser: stblab web --db {db}  (then http://127.0.0.1:8080/)")
    return int(result.exit_code())


def allure_report_line(run: Path) -> str:
    """Generate the run's Allure report (each rig its own test) and say where it is, or why not."""
    results = run / "allure-results"
    if not results.is_dir():
        return "Allure: no results were written"
    from lab.allure_report import AllureUnavailable, generate_report

    try:
        summary = generate_report([results], run / "allure-report", name=f"stblab {run.name}")
    except AllureUnavailable as exc:
        return f"Allure results {results} (no report: {exc})"
    except (OSError, ValueError, RuntimeError) as exc:  # the report is a view: the verdict stands
        return f"Allure results {results} (report failed: {exc})"
    return f"Allure report {run / 'allure-report' / 'index.html'} ({summary.total} tests, {summary.failed} failed)"


__all__ = ["app", "derive_rig_file", "first_defective", "parse_firmware"]
