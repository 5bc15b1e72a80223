"""``stblab lab``: the main job -- emulated lab, scenario suite, report and RMA entries.

What it does, in order:

1. validates the rig file and writes a run copy of it under ``reports/<run>/rigs.yaml`` with each
   emulated rig's state folder and known_hosts inside the run folder (fresh devices every run)
   and each rig's firmware set by ``--firmware RIG=VERSION``. Without ``--firmware`` and with two
   or more emulated rigs, the last rig is switched to the first defective version of its defect
   catalogue, so one run shows a passing rig *and* filed faults (``--all-good`` turns that off);
2. starts ``stblab emulate`` for the emulated rigs;
3. runs the scenario suite (``scenarios/``; the network scenarios of ``scenarios/network`` only
   with ``--network``) with pytest once per rig, in parallel (one process per rig, each with
   ``--rig NAME``), JUnit per rig, one Allure results folder, device faults filed into the RMA
   database;
4. merges the per-rig summaries into ``summary.md``/``summary.html``/``summary.json`` and prints it.

Exit codes: 0 all passed, 1 device faults found, 2 infra errors (the lab failed: results
incomplete), 3 test errors (a scenario is wrong), 4 bad input (rig file, options).

Example::

    stblab lab --rigs rigs/emulated.yaml
    stblab lab --rigs rigs/emulated.yaml --firmware stb-a=2.0.0 --firmware stb-b=2.2.0 --reproduce 3
"""

from __future__ import annotations

import html
import json
import os
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from lab.errors import InfraError, RigFileError
from lab.plugin.evidence import slug
from lab.plugin.summary import DEVICE_FAULT, INFRA_ERROR, TEST_ERROR, Entry, SessionSummary
from lab.rig import load_rigs, select_rigs
from lab.textsafe import for_html, for_terminal

EXIT_OK, EXIT_DEVICE_FAULT, EXIT_INFRA, EXIT_TEST_ERROR, EXIT_USAGE = 0, 1, 2, 3, 4
EXIT_CODES = {"ok": EXIT_OK, DEVICE_FAULT: EXIT_DEVICE_FAULT, INFRA_ERROR: EXIT_INFRA, TEST_ERROR: EXIT_TEST_ERROR}
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


def merge(summaries: list[SessionSummary]) -> SessionSummary:
    """One summary for the whole run."""
    total = SessionSummary()
    for s in summaries:
        total.passed += s.passed
        total.failed += s.failed
        total.errors += s.errors
        total.skipped += s.skipped
        total.entries += s.entries
        total.rigs.update(s.rigs)
    return total


# pytest's own exit codes beyond 0 (passed) and 1 (tests failed), and what they mean for a rig's run.
_PYTEST_EXITS = {
    2: (INFRA_ERROR, "pytest was interrupted: the rig's results are incomplete"),
    3: (INFRA_ERROR, "pytest failed internally: the rig's results are incomplete"),
    4: (TEST_ERROR, "pytest refused its arguments"),
    5: (TEST_ERROR, "pytest collected no tests"),
}


def unexplained_exit(rig: str, code: int, summary: SessionSummary) -> Entry | None:
    """An entry for a pytest exit code that the rig's summary does not account for, else None.

    A run that was interrupted, crashed or ran nothing must not read as "all passed"; when the
    summary already names a fault or an error, that is the explanation and nothing is added.
    """
    if code in (0, 1) or summary.exit_kind() != "ok":
        return None
    kind, reason = _PYTEST_EXITS.get(code, (INFRA_ERROR, "pytest ended abnormally"))
    instrument = "pytest" if kind == INFRA_ERROR else None
    return Entry(f"pytest on {rig}", kind, f"{reason} (exit {code})", rig=rig, instrument=instrument)


def write_html(summary: SessionSummary, path: Path, title: str) -> None:
    """A small self-contained HTML page of the summary (new/known faults, infra errors)."""
    rows = []
    for e in summary.entries:
        kind = {DEVICE_FAULT: "device fault", INFRA_ERROR: "infra error", TEST_ERROR: "test error"}.get(e.kind, e.kind)
        fault = ""
        if e.fault_id is not None:
            fault = f"#{e.fault_id} ({'new' if e.fault_new else 'known'})"
        cells = [kind, e.rig or "", e.nodeid, fault, e.reproduction or "", e.reason]
        row = "".join(f"<td>{for_html(c)}</td>" for c in cells)
        evidence = path.parent / str(e.rig or "") / slug(e.nodeid)
        if e.rig and evidence.is_dir():
            links = " ".join(
                f'<a href="{html.escape(str(f.relative_to(path.parent)))}">{html.escape(f.name)}</a>'
                for f in sorted(evidence.iterdir())
            )
            row += f"<td>{links}</td>"
        else:
            row += "<td></td>"
        rows.append(f"<tr>{row}</tr>")
    rig_rows = [
        "<tr>" + "".join(f"<td>{for_html(c)}</td>" for c in (r, i.get("model", ""),
                          i.get("firmware_version", ""), i.get("device_serial", ""))) + "</tr>"
        for r, i in sorted(summary.rigs.items())
    ]  # fmt: skip
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
table{{border-collapse:collapse;margin-bottom:1.5em}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{summary.passed} passed, {summary.failed} failed, {summary.errors} errors, {summary.skipped} skipped
&mdash; outcome: <b>{html.escape(summary.exit_kind())}</b></p>
<h2>Rigs</h2><table><tr><th>rig</th><th>model</th><th>firmware</th><th>serial</th></tr>{"".join(rig_rows)}</table>
<h2>Faults and errors</h2><table><tr><th>kind</th><th>rig</th><th>test</th><th>fault</th><th>reproduced</th>
<th>reason</th><th>evidence</th></tr>{"".join(rows)}</table>
<p>JUnit: <code>*/junit.xml</code>; Allure: <code>allure serve allure-results</code></p></body></html>
"""
    path.write_text(page, encoding="utf-8")


def _pytest_cmd(
    derived: Path, rig: str, run_dir: Path, suite: list[str], rma_db: str | None, reproduce: int, extra: list[str]
) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", *suite, "-p", "no:cacheprovider", "-q", "-rfE"]
    cmd += ["--rigs", str(derived), "--rig", rig, "--emulate", "never", "--run-dir", str(run_dir)]
    cmd += ["--junitxml", str(run_dir / rig / "junit.xml"), "--alluredir", str(run_dir / "allure-results")]
    cmd += ["--summary", str(run_dir / rig / "summary.json"), "--reproduce", str(reproduce)]
    cmd += ["-o", f"junit_suite_name=stblab-{rig}"]
    if rma_db:
        cmd += ["--rma-db", rma_db]
    return cmd + extra


@app.command()
def lab(
    rigs: Annotated[Path, typer.Option("--rigs", help="rig file")] = Path("rigs/emulated.yaml"),
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
) -> None:
    """Run the scenario suite against the rigs of a rig file and report (see module docstring)."""
    t0 = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run = (run_dir or Path("reports") / stamp).absolute()
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
        run.mkdir(parents=True, exist_ok=True)
        derived, versions = derive_rig_file(rigs, run, plan, chosen)
    except RigFileError as exc:
        typer.echo(f"stblab lab: {for_terminal(exc, markup=False)}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    suite_paths = list(suite or [str(REPO / "scenarios")])
    if not suite and not network:
        suite_paths += ["--ignore", str(REPO / "scenarios" / "network")]
    typer.echo(f"stblab lab: run folder {run}")
    for name in chosen:
        note = " (defective firmware from the catalogue)" if name in plan and not firmware else ""
        typer.echo(f"  rig {name}: {all_rigs[name].model}, firmware {versions.get(name, 'as flashed')}{note}")

    from lab.emulator.testing import EmulatedLab, EmulatorFailed

    emulator = EmulatedLab(derived, rigs=emulated) if emulated else None
    summaries: list[SessionSummary] = []
    procs: list[tuple[str, subprocess.Popen[bytes], Any]] = []
    try:
        if emulator is not None:
            typer.echo(f"  starting the emulated lab ({', '.join(emulated)}) ...")
            try:
                emulator.start()
            except EmulatorFailed as exc:
                raise InfraError(f"emulated lab did not start: {exc}", instrument="emulator") from exc
        for name in chosen:
            (run / name).mkdir(parents=True, exist_ok=True)
            cmd = _pytest_cmd(derived, name, run, suite_paths, rma_db, reproduce, extra)
            log = open(run / name / "pytest.log", "wb")  # noqa: SIM115 - closed below
            procs.append((name, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO), log))
            typer.echo(f"  running the suite on {name} (log {run / name / 'pytest.log'})")
        for name, proc, log in procs:
            code = proc.wait()
            log.close()
            path = run / name / "summary.json"
            if path.exists():
                s = SessionSummary.read(path)
                unexplained = unexplained_exit(name, code, s)
                if unexplained is not None:
                    s.entries.append(unexplained)
                summaries.append(s)
                typer.echo(f"  {name}: pytest exited {code}")
            else:
                s = SessionSummary()
                s.entries.append(Entry(f"pytest on {name}", INFRA_ERROR, f"pytest exited {code} without a summary",
                                       rig=name, instrument="pytest"))  # fmt: skip
                summaries.append(s)
                typer.echo(f"  {name}: pytest exited {code} without a summary (see its log)", err=True)
    except InfraError as exc:
        s = SessionSummary()
        s.entries.append(Entry("stblab lab", INFRA_ERROR, exc.message, rig=exc.rig, instrument=exc.instrument))
        summaries.append(s)
    finally:
        from lab.firmware.gate import _stop as stop_suite  # the gate's: terminate, then kill after 10 s

        for _, proc, log in procs:  # an interrupted job leaves no suite running against the rigs
            stop_suite(proc)
            log.close()
        if emulator is not None:
            emulator.stop()

    total = merge(summaries)
    total.write(run / "summary.json")
    write_html(total, run / "summary.html", f"stblab lab run {run.name}")
    typer.echo("")
    typer.echo(f"stblab lab summary ({time.monotonic() - t0:.0f} s)")
    for line in total.lines():
        typer.echo(f"  {for_terminal(line, markup=False)}")
    typer.echo(f"  report: {run / 'summary.md'} / summary.html; JUnit {run}/<rig>/junit.xml; "
               f"Allure {run / 'allure-results'}")  # fmt: skip
    raise typer.Exit(EXIT_CODES.get(total.exit_kind(), EXIT_TEST_ERROR))


__all__ = ["EXIT_CODES", "app", "derive_rig_file", "first_defective", "merge", "parse_firmware", "unexplained_exit"]
