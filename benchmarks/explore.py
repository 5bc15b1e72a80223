"""Explorer benchmark: throughput (events per minute per rig), shrink cost (reruns per shrink), and
how often a seeded sequence defect is found within a budget, on the emulated lab.

    python3 benchmarks/explore.py --defect key_window --seeds 1 2 3 4 5 --budget 30m --baseline
    python3 benchmarks/explore.py --defect power_storm --seeds 1 2 3 4 5 --budget 30m

Each seed explores one emulated rig whose firmware carries a sequence-dependent defect with the
rig's whole remote (volume and colour keys left out) until the defect is found or the budget is
spent; a found defect is shrunk and measured as `stblab explore` does, and the reproducer it wrote
is run with pytest against the defective rig (it must fail) and a rig with good firmware (it must
pass). Defects (fixtures of the emulated box, lab/emulator/config.py):

* ``key_window``: "a key during the banner's fade after two fast zaps": KEY_CHANNELUP,
  KEY_CHANNELUP, KEY_INFO within 1.5 s freeze the picture;
* ``power_storm``: three power cuts in a row, each before the box finished booting, leave the next
  boot's HDMI output black.

The baseline in the same run (``--baseline``) is an unsteered walk: uniform keys, no repeats, no
corpus, no fast runs, no power storms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lab.device import Stb  # noqa: E402
from lab.emulator.testing import EmulatedLab, write_rig_file  # noqa: E402
from lab.explore.cli import parse_duration  # noqa: E402
from lab.explore.explorer import ExploreOptions, Explorer  # noqa: E402
from lab.explore.observe import load_regions  # noqa: E402
from lab.explore.target import RigTarget  # noqa: E402
from lab.explore.walk import QUIET_KEYS, Walker, WalkOptions  # noqa: E402
from lab.rig import load_rigs  # noqa: E402

DEFECTS = {
    "key_window": {"kind": "key_window", "keys": ["KEY_CHANNELUP", "KEY_CHANNELUP", "KEY_INFO"], "within": 1.5},
    "power_storm": {"kind": "power_storm", "cuts": 3},
}
BOOT = {"bootdelay": 1, "kmsg_interval": 0}
UNIFORM = WalkOptions(repeat=0.0, mutate=0.0, fast=0.0, mash=0.0, families=False, recent=0, storm=0.0)


def replay_scenario(rig_file: Path, rig: str, scenario: Path, work: Path) -> int:
    """Run a written reproducer with pytest against ``rig``; its exit code (0 passed, 1 failed)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-file-faults", str(scenario)]
    cmd += ["--rigs", str(rig_file), "--rig", rig, "--run-dir", str(work / f"replay-{rig}"), "--rootdir", str(work)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=work, env=env).returncode


def run_one(rig_file: Path, seed: int, budget: float, steered: bool, work: Path) -> dict[str, object]:
    rig = load_rigs(rig_file)["bench"]
    out = work / f"seed{seed}-{'steered' if steered else 'uniform'}"
    with Stb(rig, run_dir=out / "run") as stb:
        keys = [k for k in stb.remote.keys if k not in QUIET_KEYS]
        walker = Walker(random.Random(seed), keys, WalkOptions() if steered else UNIFORM)
        if not steered:  # uniform: no effect credit, no novelty
            walker.learn = lambda *a, **k: None  # type: ignore[method-assign]
        target = RigTarget(stb, regions=load_regions(rig.model))
        options = ExploreOptions(
            budget=budget, shrink_runs=40, measure_n=5, out_dir=out / "found", evidence_dir=out / "evidence"
        )
        t0 = time.monotonic()
        found_at: list[float] = []

        def progress(line: str) -> None:
            if line.startswith("fault ") and not found_at:
                found_at.append(time.monotonic() - t0)
                print(f"  seed {seed}: {line}", flush=True)
            elif line.startswith(("minimal sequence", "shrink ")) or (
                line.startswith("step ") and line.split(":")[0].endswith("00")
            ):
                print(f"  seed {seed} at {time.monotonic() - t0:.0f} s: {line}", flush=True)

        result = Explorer(target, walker, seed=seed, options=options, progress=progress).run()
    row: dict[str, object] = {
        "seed": seed,
        "steered": steered,
        "events": result.events,
        "events_per_min": round(result.events_per_minute, 1),
        "soft_reboots": target.soft_reboots,
        "power_cycles": target.power_cycles,
        "found": bool(result.found),
        "wall_s": round(time.monotonic() - t0, 1),
    }
    if result.found:
        f = result.found[0]
        row |= {
            "symptom": f.finding.symptom,
            "found_after_s": round(found_at[0], 1) if found_at else None,
            "original_events": len(f.original),
            "minimal_events": len(f.minimal),
            "minimal": [e.describe() for e in f.minimal],
            "shrink_reruns": f.shrink.runs,
            "k_of_n": f"{f.k}/{f.n}",
        }
        if f.scenario is not None:
            row["reproducer_fails_on_bad"] = replay_scenario(rig_file, "bench", f.scenario, out) == 1
            row["reproducer_passes_on_good"] = replay_scenario(rig_file, "good", f.scenario, out) == 0
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--defect", choices=sorted(DEFECTS), default="key_window")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--budget", default="30m")
    ap.add_argument("--baseline", action="store_true", help="also run the unsteered walk per seed")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    budget = parse_duration(args.budget)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `kill` still stops the emulated lab
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rig_file = write_rig_file(
            work / "lab",
            ["bench", "good"],
            firmware="2.9.0",
            defects={"2.9.0": [DEFECTS[args.defect]]},
            boot=BOOT,
            per_rig={"good": {"firmware": "2.0.0"}},
        )
        with EmulatedLab(rig_file):
            for seed in args.seeds:
                for steered in (True, False) if args.baseline else (True,):
                    row = run_one(rig_file, seed, budget, steered, work)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    if args.out:  # written as it goes: a stopped run keeps its rows
                        write(args.out, args, rows)
    for steered in (True, False):
        sel = [r for r in rows if r["steered"] is steered]
        if not sel:
            continue
        found = [r for r in sel if r["found"]]
        print(
            f"{'steered' if steered else 'uniform'}: found {len(found)}/{len(sel)} within {args.budget}; "
            f"events/min median {statistics.median(float(r['events_per_min']) for r in sel)}; "  # type: ignore[arg-type]
            + (
                f"shrink reruns median {statistics.median(int(r['shrink_reruns']) for r in found)}, "  # type: ignore[call-overload]
                f"minimal events {sorted(int(r['minimal_events']) for r in found)}, "  # type: ignore[call-overload]
                f"found after s {sorted(float(r['found_after_s'] or 0) for r in found)}"  # type: ignore[arg-type]
                if found
                else "nothing found"
            )
        )
    if args.out:
        write(args.out, args, rows)


def write(path: Path, args: argparse.Namespace, rows: list[dict[str, object]]) -> None:
    """The run's rows with the machine and the load, as JSON."""
    meta = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "python": platform.python_version(),
        "load": [round(x, 1) for x in os.getloadavg()],
        "defect": DEFECTS[args.defect],
        "boot": BOOT,
    }
    path.write_text(json.dumps({"meta": meta, "budget": args.budget, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
