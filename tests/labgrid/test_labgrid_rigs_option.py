"""`stblab lab --rigs labgrid://...` end to end: the command holds the place, the rig's pytest checks it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from labgrid_grid import Grid, wait_for

pytestmark = [pytest.mark.labgrid, pytest.mark.slow]

STBLAB = [sys.executable, "-m", "lab.cli"]


def _holders(grid: Grid) -> dict[str, str | None]:
    with grid.link("observer") as link:
        return {n: p.acquired for n, p in link.places().items()}


def _lab(url: str, run: Path, suite: list[str], db: Path) -> list[str]:
    args = [*STBLAB, "lab", "--rigs", url, "--all-good", "--no-network", "--run-dir", str(run), "--rma-db", str(db)]
    for s in suite:
        args += ["--suite", s]
    return args


def test_stblab_lab_on_a_labgrid_url_holds_the_place_and_releases_it(grid: Grid, models: Path, tmp_path: Path) -> None:
    url = grid.url(name="stb-a", wait="30s", models=models, user="ci-401")
    run = tmp_path / "run"
    p = subprocess.run(_lab(url, run, ["scenarios/test_agree.py"], tmp_path / "rma.sqlite"),
                       text=True, capture_output=True, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    assert "acquired place stb-a" in p.stderr and "released place stb-a" in p.stderr
    assert "rig stb-a: STB-4K-X1" in p.stdout  # the rig derived from the place
    summary = p.stdout.split("stblab lab summary", 1)[1]
    assert "stb-a: planned 1, run 1, passed 1" in summary and "rig stb-a: finished" in summary, summary
    assert (run / "labgrid-rigs.yaml").exists() and (run / "stb-a" / "junit.xml").exists()
    assert _holders(grid)["stb-a"] is None


def test_stblab_lab_on_a_bad_labgrid_url_is_bad_input(tmp_path: Path) -> None:
    p = subprocess.run(_lab("labgrid://127.0.0.1:20408/?model=X&count=two", tmp_path / "r", [], tmp_path / "db"),
                       text=True, capture_output=True, timeout=60)  # fmt: skip
    assert p.returncode == 4, p.stderr
    assert "key 'count'" in p.stderr


def test_stblab_lab_exporter_lost_mid_run_is_an_infra_error_nothing_filed(
    fresh_grid: Grid, models: Path, tmp_path: Path
) -> None:
    grid = fresh_grid
    url = grid.url(name="stb-a", wait="30s", models=models, user="ci-402")
    run = tmp_path / "run"
    suite = ["scenarios/test_agree.py", "scenarios/test_boot.py"]  # 3 tests: the loss lands between them
    proc = subprocess.Popen(_lab(url, run, suite, tmp_path / "rma.sqlite"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    events = run / "stb-a" / "events.jsonl"
    wait_for("the first test result", lambda: proc.poll() is not None or '"result"' in events.read_text(), 180)
    assert proc.poll() is None, "the job ended before its first test result"
    grid.exporters["labhost-1"].kill()  # stb-a's exporter dies: the place is no longer usable
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 2, out + err
    assert "exporter gone: place stb-a" in err and "exporter gone" in out
    job = json.loads((run / "job.json").read_text(encoding="utf-8"))
    outcomes = [t["outcome"] for r in job["rigs"] for t in r["tests"]]
    assert "device_fault" not in outcomes and not [t for r in job["rigs"] for t in r["tests"] if t.get("fault_id")]
    # the rig's pytest saw the loss before its last test (plugin check), and the job names it too
    last = job["rigs"][0]["tests"][-1]
    assert last["outcome"] == "infra_error" and "exporter gone: place stb-a" in last["reason"], last
    assert any("exporter gone" in pr["reason"] for pr in job["problems"])
    assert _holders(grid)["stb-a"] is None
