"""labgrid benchmark: what holding rigs through a labgrid coordinator costs, and who gets them first.

A real ``labgrid-coordinator`` and two ``labgrid-exporter`` processes (``labhost-1``, ``labhost-2``)
on loopback export 20 rigs (10 each; their addresses are documentation addresses, never dialled:
only the coordinator's bookkeeping is measured). In the same process, alternating per run:

* ``static``: the baseline, what a job does with a static rig file today: ``load_rigs`` of the
  same 20 rigs;
* ``labgrid x20``: one job holding all 20 places: ``held_rig_file(count=20)`` enter (connect,
  20 reservations, wait, 20 acquires, places -> rigs, write and load the rig file) and exit
  (20 releases, 20 cancels);
* ``labgrid x1``: a one-rig job (``name=``), the same steps for one place.

Then fairness: a blocker holds all 20 places; three clients ask for all 20 (``count=20``):
``A`` prio 0 (oldest), ``B`` prio 0 (newer), ``C`` prio 10 (newest); the blocker lets go and each
client, once it holds all 20, keeps them 0.3 s and releases. labgrid schedules by priority, then
age, so the expected order is C, A, B.

    python benchmarks/labgrid.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
# This file is named labgrid.py: its folder must not shadow the labgrid package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "labgrid"))

import yaml  # noqa: E402
from labgrid_grid import Grid  # noqa: E402

from lab.labgrid.models import write_model_facts  # noqa: E402
from lab.labgrid.source import held_rig_file  # noqa: E402
from lab.rig import load_rigs  # noqa: E402

N_PLACES = 20


def _rig_file(root: Path) -> Path:
    rigs = []
    for i in range(N_PLACES):
        net = f"192.0.2.{i + 1}"
        rigs.append(
            {
                "name": f"stb-{i:02d}",
                "model": "STB-4K-X1",
                "features": ["hdmi", "ir", "ssh"],
                "serial": {"url": f"rfc2217://{net}:4001"},
                "ssh": {"host": net, "port": 22, "user": "root", "key": "keys/lab", "known_hosts": "known_hosts"},
                "ir": {"url": f"itach://{net}:4998/1:1", "remote": "remote.conf"},
                "video": {"url": f"http://{net}/stream.mjpg", "width": 1280, "height": 720, "fps": 25},
                "power": {"url": f"http://198.51.100.{i // 8 + 1}", "outlet": i % 8 + 1},
            }
        )
    path = root / "rigs.yaml"
    path.write_text(yaml.safe_dump({"rigs": rigs}, sort_keys=False), encoding="utf-8")
    return path


def _timed(fn) -> float:  # noqa: ANN001
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def overhead(grid: Grid, rig_file: Path, models: Path, out: Path, runs: int) -> dict[str, list[float]]:
    """Seconds per run of each variant (alternating in one process)."""
    res: dict[str, list[float]] = {"static": [], "labgrid x20": [], "labgrid x1": []}
    quiet = lambda _line: None  # noqa: E731
    many = grid.url(model="STB-4K-X1", pool="ci", count=N_PLACES, wait="60s", models=models, user="bench")
    one = grid.url(name="stb-07", wait="60s", models=models, user="bench")

    def hold(url: str, n: int) -> None:
        with held_rig_file(url, out, progress=quiet) as held:
            assert len(held.rigs) == n

    for _ in range(runs):
        res["static"].append(_timed(lambda: load_rigs(rig_file)))
        res["labgrid x20"].append(_timed(lambda: hold(many, N_PLACES)))
        res["labgrid x1"].append(_timed(lambda: hold(one, 1)))
    return res


def fairness(grid: Grid, models: Path, root: Path) -> dict[str, object]:
    """Order and time in which three competing 20-place clients get their places."""
    quiet = lambda _line: None  # noqa: E731
    done: list[tuple[str, float]] = []
    started = threading.Event()
    t0 = 0.0

    def client(name: str, prio: int) -> None:
        url = grid.url(model="STB-4K-X1", count=N_PLACES, wait="120s", prio=prio, models=models, user=f"ci-{name}")
        with held_rig_file(url, root / f"{name}.yaml", progress=quiet):
            done.append((name, time.perf_counter() - t0))
            time.sleep(0.3)  # the job's work, so the next client has to wait for it

    blocker = grid.url(model="STB-4K-X1", count=N_PLACES, wait="60s", models=models, user="ci-blocker")
    with held_rig_file(blocker, root / "blocker.yaml", progress=quiet):
        threads = []
        for name, prio in (("A", 0), ("B", 0), ("C", 10)):
            t = threading.Thread(target=client, args=(name, prio))
            t.start()
            threads.append(t)
            # each client's reservations exist before the next client starts (age order)
            with grid.link("bench-observer") as link:
                deadline = time.monotonic() + 30
                while sum(r.owner.endswith(f"/ci-{name}") for r in link.reservations()) < N_PLACES:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"client {name} did not reserve")
                    time.sleep(0.05)
        started.set()
        t0 = time.perf_counter()  # the blocker lets go now
    for t in threads:
        t.join(timeout=180)
    order = [n for n, _ in done]
    return {"order": order, "expected": ["C", "A", "B"], "seconds_after_blocker_released": dict(done)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rig_file = _rig_file(root)
        rigs = load_rigs(rig_file)
        models = root / "models"
        write_model_facts(list(rigs.values()), models)
        names = list(rigs.values())
        hosts = {"labhost-1": names[:10], "labhost-2": names[10:]}
        with Grid(root / "grid", hosts) as grid:
            hold(grid, root)  # warm-up: imports, first connection
            res = overhead(grid, rig_file, models, root / "derived.yaml", args.runs)
            fair = fairness(grid, models, root)
    med = {k: statistics.median(v) for k, v in res.items()}
    report = {
        "machine": f"{platform.machine()}, {platform.python_version()}, {platform.node()}",
        "runs": args.runs,
        "median_seconds": med,
        "all_seconds": res,
        "per_rig_seconds": {
            "labgrid x20": med["labgrid x20"] / N_PLACES,
            "labgrid x1": med["labgrid x1"],
            "static": med["static"] / N_PLACES,
        },
        "overhead_per_rig_vs_static": (med["labgrid x20"] - med["static"]) / N_PLACES,
        "ratio_x20_to_static": med["labgrid x20"] / med["static"],
        "fairness": fair,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"machine: {report['machine']}; {args.runs} runs, medians")
    for k, v in med.items():
        print(f"  {k:<12} {v * 1000:8.1f} ms per job   {report['per_rig_seconds'][k] * 1000:7.1f} ms per rig")
    print(f"  overhead per rig vs static: {report['overhead_per_rig_vs_static'] * 1000:.1f} ms")
    print(f"  labgrid x20 / static: {report['ratio_x20_to_static']:.0f}x")
    print(f"fairness: order {fair['order']} (expected {fair['expected']}), done at "
          + ", ".join(f"{n} {s:.2f} s" for n, s in fair["seconds_after_blocker_released"].items()))  # fmt: skip


def hold(grid: Grid, root: Path) -> None:
    """One untimed hold, so the first timed run does not pay for imports."""
    with held_rig_file(
        grid.url(name="stb-00", wait="30s", models=root / "models", user="bench"),
        root / "warm.yaml",
        progress=lambda _l: None,
    ):
        pass


if __name__ == "__main__":
    main()
