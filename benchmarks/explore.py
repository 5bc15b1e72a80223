"""Explorer benchmark: throughput (events per minute per rig) and shrink cost (reruns per shrink),
and how often a seeded sequence defect is found within a budget, on the emulated lab.

    python3 benchmarks/explore.py --seeds 1 2 3 4 5 --budget 30m --out benchmarks/explore.json

Each seed explores one emulated rig whose firmware carries a sequence-dependent defect (by default
"a key during the banner's fade after two fast zaps": KEY_CHANNELUP, KEY_CHANNELUP, KEY_INFO within
1.5 s freezes the picture) with the rig's whole remote (volume and colour keys left out), until the
defect is found or the budget is spent; a found defect is shrunk and measured as `stblab explore`
does. The baseline in the same run is an unsteered walk (uniform keys, no corpus of bursts).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.device import Stb  # noqa: E402
from lab.emulator.testing import EmulatedLab, write_rig_file  # noqa: E402
from lab.explore.cli import parse_duration  # noqa: E402
from lab.explore.explorer import ExploreOptions, Explorer  # noqa: E402
from lab.explore.observe import load_regions  # noqa: E402
from lab.explore.target import RigTarget  # noqa: E402
from lab.explore.walk import QUIET_KEYS, Walker, WalkOptions  # noqa: E402
from lab.rig import load_rigs  # noqa: E402

DEFECT = {"kind": "key_window", "keys": ["KEY_CHANNELUP", "KEY_CHANNELUP", "KEY_INFO"], "within": 1.5}


def run_one(rig_file: Path, seed: int, budget: float, steered: bool, work: Path) -> dict[str, object]:
    rig = load_rigs(rig_file)["bench"]
    with Stb(rig, run_dir=work / f"run-{seed}-{steered}") as stb:
        keys = [k for k in stb.remote.keys if k not in QUIET_KEYS]
        opts = WalkOptions() if steered else WalkOptions(repeat=0.0, mutate=0.0)
        walker = Walker(random.Random(seed), keys, opts)
        if not steered:  # uniform: no effect credit, no novelty
            walker.learn = lambda *a, **k: None  # type: ignore[method-assign]
        target = RigTarget(stb, regions=load_regions(rig.model))
        options = ExploreOptions(
            budget=budget, shrink_runs=40, measure_n=5, out_dir=work / "found", evidence_dir=work / "evidence"
        )
        t0 = time.monotonic()
        found_at: list[float] = []

        def progress(line: str) -> None:
            if line.startswith("fault ") and not found_at:
                found_at.append(time.monotonic() - t0)

        result = Explorer(target, walker, seed=seed, options=options, progress=progress).run()
    row: dict[str, object] = {
        "seed": seed,
        "steered": steered,
        "events": result.events,
        "events_per_min": round(result.events_per_minute, 1),
        "found": bool(result.found),
    }
    if result.found:
        f = result.found[0]
        row |= {
            "symptom": f.finding.symptom,
            "found_after_s": round(found_at[0], 1) if found_at else None,
            "original_events": len(f.original),
            "minimal_events": len(f.minimal),
            "shrink_reruns": f.shrink.runs,
            "k_of_n": f"{f.k}/{f.n}",
        }
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--budget", default="30m")
    ap.add_argument("--baseline", action="store_true", help="also run the unsteered walk per seed")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    budget = parse_duration(args.budget)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rig_file = write_rig_file(
            work / "lab",
            ["bench"],
            firmware="2.9.0",
            defects={"2.9.0": [DEFECT]},
            boot={"bootdelay": 1, "kmsg_interval": 0},
        )
        with EmulatedLab(rig_file):
            for seed in args.seeds:
                for steered in (True, False) if args.baseline else (True,):
                    row = run_one(rig_file, seed, budget, steered, work)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    for steered in (True, False):
        sel = [r for r in rows if r["steered"] is steered]
        if not sel:
            continue
        found = [r for r in sel if r["found"]]
        print(
            f"{'steered' if steered else 'uniform'}: found {len(found)}/{len(sel)} within {args.budget}; "
            f"events/min median {statistics.median(r['events_per_min'] for r in sel)}; "
            + (
                f"shrink reruns median {statistics.median(r['shrink_reruns'] for r in found)}, "
                f"minimal events {sorted(r['minimal_events'] for r in found)}, "
                f"found after s {sorted(r['found_after_s'] for r in found)}"
                if found
                else "nothing found"
            )
        )
    if args.out:
        meta = {"machine": f"{platform.machine()} {platform.node()}", "python": platform.python_version()}
        args.out.write_text(json.dumps({"meta": meta, "budget": args.budget, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
