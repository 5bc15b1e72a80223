"""``stblab labgrid``: rigs on many lab hosts through a labgrid coordinator.

Examples::

    stblab labgrid exporter-config rigs/lab2.yaml -o /etc/labgrid/exporter.yaml   # on each lab host
    stblab labgrid sync rigs/lab2.yaml --coordinator coord:20408 --host labhost-2 --pool ci
    stblab labgrid model-facts rigs/lab2.yaml                  # rigs/models/<model>.yaml, rig: section
    stblab labgrid places --coordinator coord:20408
    stblab labgrid run 'labgrid://coord:20408/?model=STB-4K-X1&count=2&wait=30m' -- stblab lab --rigs {rigs}
    stblab labgrid janitor --coordinator coord:20408 --live-jobs 4711,4712
    stblab labgrid gate-plan 'labgrid://coord:20408/?model=STB-4K-X1&pool=ci' --image fw.img -o plan/
    stblab labgrid gate-collect --plan plan/gate-plan.json gate-labhost-1 gate-labhost-2

Exit codes: 0 ok; 2 the lab failed (coordinator unreachable, places not free in time, a lock lost);
4 bad input (rig file, URL, options); 5 ``gate-plan``'s image refused; otherwise ``run`` exits
with its command's code and ``gate-collect`` with the gate's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import typer

from lab.errors import InfraError, RigFileError
from lab.labgrid.request import default_user, parse_duration, parse_request
from lab.lifeline import tied
from lab.rig import load_rigs, select_rigs

EXIT_INFRA, EXIT_USAGE = 2, 4

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Rigs on many lab hosts through a labgrid coordinator: exporters, places, locks, gate plans.",
)


def _fail(exc: Exception) -> typer.Exit:
    code = EXIT_USAGE if isinstance(exc, (RigFileError, ValueError)) else EXIT_INFRA
    print(f"stblab labgrid: {exc}", file=sys.stderr)
    return typer.Exit(code)


def _link(coordinator: str, user: str | None = None):  # noqa: ANN202 - CoordinatorLink, imported late
    try:
        from lab.labgrid.coordinator import CoordinatorLink
    except ImportError as exc:  # pragma: no cover - only without the extra
        print("stblab labgrid: labgrid is not installed (pip install 'stblab[labgrid]')", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE) from exc
    return CoordinatorLink(coordinator, user=user or default_user()).connect()


@app.command("exporter-config")
def exporter_config_cmd(
    rig_file: Path = typer.Argument(..., help="rig file of the rigs cabled to this lab host"),
    out: Path | None = typer.Option(None, "-o", "--out", help="write here (default: stdout)"),
    rig: list[str] = typer.Option([], "--rig", help="only this rig or selector (repeatable)"),
) -> None:
    """Write the labgrid-exporter YAML (one resource group per rig) for a rig file."""
    from lab.labgrid.exporter_config import exporter_config

    try:
        rigs = load_rigs(rig_file)
        chosen = [r for sel in rig for r in select_rigs(rigs, sel)] if rig else list(rigs.values())
        text = exporter_config(chosen, source=str(rig_file))
    except RigFileError as exc:
        raise _fail(exc) from exc
    if out is None:
        sys.stdout.write(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out} ({len(chosen)} resource group(s))")


@app.command("model-facts")
def model_facts_cmd(
    rig_file: Path = typer.Argument(..., help="rig file to take each model's facts from (first rig of a model)"),
    models: Path = typer.Option(Path("rigs/models"), "--models", help="folder of <model>.yaml files"),
) -> None:
    """Write the `rig:` section of rigs/models/<model>.yaml from a rig file (addresses left out)."""
    from lab.labgrid.models import write_model_facts

    try:
        for path in write_model_facts(list(load_rigs(rig_file).values()), models):
            print(f"wrote {path}")
    except RigFileError as exc:
        raise _fail(exc) from exc


@app.command("sync")
def sync_cmd(
    rig_file: Path = typer.Argument(..., help="rig file of the rigs cabled to one lab host"),
    coordinator: str = typer.Option(..., "--coordinator", help="HOST:PORT of the labgrid coordinator"),
    host: str = typer.Option(..., "--host", help="the lab host's exporter name (labgrid-exporter -n NAME)"),
    pool: str | None = typer.Option(None, "--pool", help="pool tag, e.g. ci or desk"),
    tag: list[str] = typer.Option([], "--tag", help="extra tag key=value (repeatable)"),
) -> None:
    """Create or update one place per rig with tags model=, pool=, host=."""
    from lab.labgrid.sync import sync_places

    try:
        extra = dict(t.split("=", 1) for t in tag if "=" in t)
        if len(extra) != len(tag):
            raise ValueError(f"--tag wants key=value, got {', '.join(t for t in tag if '=' not in t)}")
        rigs = list(load_rigs(rig_file).values())
        link = _link(coordinator)
        try:
            report = sync_places(link, rigs, host=host, pool=pool, extra_tags=extra)
        finally:
            link.close()
    except (RigFileError, ValueError, InfraError) as exc:
        raise _fail(exc) from exc
    for line in report.lines():
        print(line)


@app.command("places")
def places_cmd(
    coordinator: str = typer.Option(..., "--coordinator", help="HOST:PORT of the labgrid coordinator"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """List places: tags, holder, reservation, and whether their exporter publishes them."""
    try:
        link = _link(coordinator)
        try:
            places = link.places()
        finally:
            link.close()
    except InfraError as exc:
        raise _fail(exc) from exc
    if as_json:
        out = {
            n: {"tags": p.tags, "acquired": p.acquired, "reservation": p.reservation, "resources": len(p.resources)}
            for n, p in places.items()
        }
        print(json.dumps(out, indent=2))
        return
    for n, p in places.items():
        tags = ",".join(f"{k}={v}" for k, v in sorted(p.tags.items()))
        state = f"held by {p.acquired}" if p.acquired else ("reserved" if p.reservation else "free")
        print(f"{n:<20} {state:<28} {len(p.resources)} resource(s)  {tags}")


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run_cmd(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="labgrid://HOST:PORT/?model=...&count=N&wait=30m"),
    rig_file: Path = typer.Option(
        Path("reports/labgrid-rigs.yaml"), "--rig-file", help="where the derived rig file goes"
    ),
) -> None:
    """Hold the places while a command runs; `{rigs}` in the command is the derived rig file."""
    from lab.labgrid.source import held_rig_file, status_path

    cmd = list(ctx.args)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise _fail(ValueError("no command given: stblab labgrid run URL -- COMMAND... ({rigs} = the rig file)"))
    try:
        with held_rig_file(url, rig_file) as held:
            argv = [a.replace("{rigs}", str(held.rig_file)) for a in cmd]
            env = dict(os.environ, STBLAB_LABGRID_STATUS=str(status_path(held.rig_file)))
            proc = subprocess.Popen(tied(argv), env=env)  # no run outlives its places
            try:
                code = proc.wait()
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
            lost = held.lost
    except (RigFileError, InfraError) as exc:
        raise _fail(exc) from exc
    except KeyboardInterrupt:
        print("stblab labgrid: interrupted; places released", file=sys.stderr)
        raise typer.Exit(130) from None
    for rig, why in lost.items():
        print(f"stblab labgrid: infra error on rig {rig}: {why}", file=sys.stderr)
    if lost and code in (0, 1):
        code = EXIT_INFRA  # results from a rig that was not ours for the whole run are not a verdict
    raise typer.Exit(code)


@app.command("janitor")
def janitor_cmd(
    coordinator: str = typer.Option(..., "--coordinator", help="HOST:PORT of the labgrid coordinator"),
    live_jobs: str | None = typer.Option(None, "--live-jobs", help="comma-separated ids of the CI jobs still running"),
    live_jobs_file: Path | None = typer.Option(None, "--live-jobs-file", help="file with one running job id a line"),
    older_than: str | None = typer.Option(None, "--older-than", help="free ci- locks older than this (e.g. 6h)"),
    all_users: bool = typer.Option(False, "--all-users", help="with --older-than, also engineers' hand locks"),
    dry_run: bool = typer.Option(False, "--dry-run", help="only say what would be freed"),
) -> None:
    """Release places held by CI jobs that no longer run and cancel their reservations."""
    from lab.labgrid.janitor import clean

    try:
        live: set[str] | None = None
        if live_jobs is not None or live_jobs_file is not None:
            live = {j.strip() for j in (live_jobs or "").split(",") if j.strip()}
            if live_jobs_file is not None:
                live |= {ln.strip() for ln in live_jobs_file.read_text(encoding="utf-8").splitlines() if ln.strip()}
        age = parse_duration(older_than, what="--older-than") if older_than else None
        link = _link(coordinator, user="stblab-janitor")
        try:
            freed = clean(link, live_jobs=live, older_than=age, all_users=all_users, dry_run=dry_run)
        finally:
            link.close()
    except (ValueError, OSError, InfraError) as exc:
        raise _fail(exc) from exc
    verb = "would free" if dry_run else "freed"
    for s in freed:
        what = f"place {s.place}" if s.place else f"reservation {s.token}"
        print(f"{verb} {what} of {s.holder}: {s.why}")
    if not freed:
        print("nothing stale")


@app.command("gate-plan")
def gate_plan_cmd(
    url: str = typer.Argument(..., help="labgrid://HOST:PORT/?model=...&pool=..."),
    image: Path | None = typer.Option(None, "--image", help="the firmware image: validated once, recorded in the plan"),
    trusted_key: list[Path] = typer.Option([], "--trusted-key", help="extra vendor public key (repeatable)"),
    out: Path = typer.Option(Path("."), "-o", "--out", help="folder for gate-plan.json and the CI files"),
    test: list[str] = typer.Option([], "--test", help="a test (node id or pytest argument) of the selection"),
    spread: bool = typer.Option(False, "--spread", help="cut the selection into one share per host"),
) -> None:
    """Plan the gate over lab hosts: gate-plan.json, a GitLab child pipeline, a GitHub matrix."""
    from lab.labgrid.plan import EXIT_REFUSED, ImageRefused, make_plan, write_plan

    try:
        request = parse_request(url)
        link = _link(request.coordinator, user=request.holder)
        try:
            plan = make_plan(link, request, image=image, trusted_keys=trusted_key, tests=test, spread=spread)
        finally:
            link.close()
        files = write_plan(plan, out)
    except ImageRefused as exc:
        print(f"stblab labgrid: image refused ({exc.reason}): {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_REFUSED) from exc
    except (RigFileError, OSError, InfraError) as exc:
        raise _fail(exc) from exc
    for job in plan.jobs:
        print(f"{job.host}: {', '.join(job.places)}" + (f" ({len(job.tests)} test(s))" if job.tests else ""))
    for f in files:
        print(f"wrote {f}")


@app.command("gate-collect")
def gate_collect_cmd(
    plan: Path = typer.Option(..., "--plan", help="gate-plan.json"),
    dirs: list[Path] = typer.Argument(..., help="the host jobs' run folders (each holding a gate.json)"),
    as_json: bool = typer.Option(False, "--json", help="print the merged result as JSON"),
) -> None:
    """Merge the host jobs' gate results into one verdict; a planned place without a result is not run."""
    from dataclasses import asdict

    from lab.labgrid.plan import GatePlan, collect

    try:
        result = collect(GatePlan.read(plan), dirs)
    except RigFileError as exc:
        raise _fail(exc) from exc
    if as_json:
        print(json.dumps(asdict(result) | {"exit_code": result.exit_code, "verdict": result.verdict()}, indent=2))
    else:
        print("\n".join(result.lines()))
    raise typer.Exit(result.exit_code)


__all__ = ["app"]
