"""``stblab explore``: find rare faults on one rig and shrink them to a minimal reproducer.

Example::

    stblab explore --rigs rigs/emulated.yaml --rig stb-b --seed 7 --budget 30m
"""

from __future__ import annotations

import contextlib
import random
import re
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from lab.errors import DeviceFault, InfraError, TestError
from lab.explore.explorer import ExploreOptions, ExploreResult
from lab.explore.network import rig_shaper
from lab.explore.walk import WalkOptions
from lab.outcome import ExitCode
from lab.rig import Rig

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0], no_args_is_help=False)


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``30m``, ``1h30m``; ValueError naming the text otherwise."""
    m = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not text.strip() or not m or not any(m.groups()):
        raise ValueError(f"not a duration: {text!r} (e.g. 90s, 30m, 1h)")
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s


def _fail(message: str, code: ExitCode) -> typer.Exit:
    typer.echo(f"stblab explore: {message}", err=True)
    return typer.Exit(int(code))


@app.command()
def explore(
    rigs: Annotated[Path, typer.Option("--rigs", help="rig file")] = Path("rigs/emulated.yaml"),
    rig: Annotated[str, typer.Option("--rig", help="the rig to explore")] = "stb-a",
    seed: Annotated[int, typer.Option("--seed", help="seed of the walk (the same seed walks the same way)")] = 1,
    budget: Annotated[str, typer.Option("--budget", help="wall time for the walk, e.g. 30m")] = "30m",
    keys: Annotated[
        str | None, typer.Option("--keys", help="comma-separated remote keys to use (default: the remote's)")
    ] = None,
    stop_after: Annotated[int, typer.Option("--stop-after", help="faults to find before stopping (0: all)")] = 1,
    episode: Annotated[int, typer.Option("--episode", help="events before restarting from a known state")] = 120,
    shrink_runs: Annotated[int, typer.Option("--shrink-runs", help="reruns one shrink may spend")] = 40,
    measure: Annotated[int, typer.Option("--measure", help="replays of the minimal sequence (k of n)")] = 5,
    power_events: Annotated[float, typer.Option("--power-events", help="probability per step of a power cut")] = 0.02,
    shell: Annotated[
        list[str] | None,
        typer.Option("--shell", help="a shell action the walk may run (repeatable), e.g. 'hog mem 256', 'hog stop'"),
    ] = None,
    shell_rate: Annotated[float, typer.Option("--shell-rate", help="probability per step of a shell action")] = 0.05,
    net_profile: Annotated[
        list[str] | None,
        typer.Option(
            "--net-profile",
            help="an impairment profile the walk may switch the rig's link to (repeatable; a name in rigs/profiles "
            "or a path; 'all': every profile there); needs the rig's network link (root)",
        ),
    ] = None,
    net_rate: Annotated[float, typer.Option("--net-rate", help="probability per step of a profile switch")] = 0.03,
    out: Annotated[Path, typer.Option("--out", help="where reproducers are written")] = Path("scenarios/found"),
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="evidence folder")] = None,
    rma_db: Annotated[str | None, typer.Option("--rma-db", help="file found faults in this RMA database")] = None,
    emulate: Annotated[str, typer.Option("--emulate", help="start emulated rigs: auto, always, never")] = "auto",
) -> None:
    """Walk the rig's remote, power and shell steered to unseen screens; shrink and file what fails."""
    from lab.network.profile import ProfileError
    from lab.rig import RigFileError, load_rigs

    try:
        seconds = parse_duration(budget)
        all_rigs = load_rigs(rigs)
        profiles = net_profiles(net_profile or [])
    except (ValueError, RigFileError, ProfileError) as exc:
        raise _fail(str(exc), ExitCode.BAD_INPUT) from None
    if rig not in all_rigs:
        raise _fail(f"{rigs}: no rig named {rig!r} (rigs: {', '.join(all_rigs)})", ExitCode.BAD_INPUT)
    chosen = all_rigs[rig]
    run = run_dir or Path("reports") / f"explore-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    options = ExploreOptions(
        budget=seconds, episode=episode, shrink_runs=shrink_runs, measure_n=measure, stop_after=stop_after,
        out_dir=out, evidence_dir=run,
    )  # fmt: skip
    try:
        walk = WalkOptions(
            power_cut=power_events,
            shell_actions=tuple(shell or ()),
            shell=shell_rate if shell else 0.0,
            net_profiles=tuple(profiles),
            net=net_rate if profiles else 0.0,
        )
        result = _run(rigs, chosen, seed, options, walk, keys=keys, rma_db=rma_db, emulate=emulate)
    except InfraError as exc:
        raise _fail(f"lab failure, nothing filed: {exc}", ExitCode.INFRA_ERROR) from None
    except TestError as exc:
        raise _fail(str(exc), ExitCode.TEST_ERROR) from None
    typer.echo(
        f"explored {rig} with seed {seed}: {result.events} events in {result.steps} steps, "
        f"{result.screens} screens, {result.events_per_minute:.0f} events/min, {len(result.found)} faults"
    )
    for f in result.found:
        typer.echo(
            f"  {f.finding.symptom}: {len(f.original)} -> {len(f.minimal)} events in {f.shrink.runs} reruns, "
            f"reproduced {f.k} of {f.n}"
            + (f", reproducer {f.scenario}" if f.scenario else "")
            + (f", fault #{f.fault_id}" if f.fault_id else "")
        )
    raise typer.Exit(int(ExitCode.DEVICE_FAULT if result.found else ExitCode.OK))


def net_profiles(names: list[str]) -> list[str]:
    """The profiles the walk may switch to, each loaded once to fail early on a bad one ("all": every
    profile in rigs/profiles but ``clean``, which the walk returns to anyway)."""
    from lab.network.profile import list_profiles, load_profile

    out: list[str] = []
    for name in names:
        for each in sorted(set(list_profiles()) - {"clean"}) if name == "all" else [name]:
            load_profile(each)  # ProfileError names the file, the key and the problem
            if each not in out:
                out.append(each)
    return out


def _run(
    rig_file: Path,
    chosen: Rig,
    seed: int,
    options: ExploreOptions,
    walk: WalkOptions,
    *,
    keys: str | None,
    rma_db: str | None,
    emulate: str,
) -> ExploreResult:
    """Open the rig (starting its emulator when asked) and explore it with ``options`` and ``walk``."""
    from lab.device import Stb
    from lab.emulated_lab import ensure_emulated
    from lab.explore.explorer import Explorer
    from lab.explore.observe import load_regions
    from lab.explore.target import RigTarget
    from lab.explore.walk import QUIET_KEYS, Walker

    def echo(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    with contextlib.ExitStack() as stack:
        stack.enter_context(ensure_emulated(rig_file, [chosen], emulate, echo=echo))
        stb = stack.enter_context(Stb(chosen, run_dir=options.evidence_dir))
        shaper = stack.enter_context(rig_shaper(chosen)) if walk.net_profiles else None
        key_list = (
            [k.strip() for k in keys.split(",") if k.strip()]
            if keys
            else [k for k in stb.remote.keys if k not in QUIET_KEYS]
        )
        unknown = sorted(set(key_list) - set(stb.remote.keys))
        if unknown:
            raise TestError(f"keys not on the rig's remote: {', '.join(unknown)}")
        walker = Walker(random.Random(seed), key_list, walk)
        target = RigTarget(stb, regions=load_regions(chosen.model), boot_timeout=stb.boot_timeout, network=shaper)
        meta = {"rig": chosen.name, "model": chosen.model, "profile": chosen.model}
        if walk.net_profiles:
            meta["network profiles"] = ", ".join(walk.net_profiles)
        filer = None
        if rma_db:
            from lab.explore.filing import filer_for

            filer = filer_for(rma_db, stb, seed)
        stb.to("shell")
        meta["firmware"] = stb.firmware_version()
        explorer = Explorer(target, walker, seed=seed, options=options, meta=meta, progress=echo, file=filer)
        try:
            return explorer.run()
        except DeviceFault as exc:  # a fault outside the checks (e.g. the console while resetting)
            raise TestError(f"the box failed while being reset, not during the walk: {exc}") from exc
