"""Jobs on places of a real labgrid coordinator: `stblab lab`, the janitor, a gate over two lab hosts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from labgrid_grid import Grid

from lab.rig import Rig

STBLAB = [sys.executable, "-m", "lab.cli"]

pytestmark = pytest.mark.labgrid


def _holders(grid: Grid) -> dict[str, str | None]:
    with grid.link("observer") as link:
        return {n: p.acquired for n, p in link.places().items()}


def _run(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(STBLAB + args, text=True, capture_output=True, timeout=300, **kw)  # type: ignore[call-overload]


@pytest.mark.slow
def test_stblab_lab_on_two_labgrid_places_passes(grid: Grid, models: Path, tmp_path: Path) -> None:
    url = grid.url(model="STB-4K-X1", pool="ci", count=2, wait="30s", models=models, user="ci-301")
    run = tmp_path / "run"
    p = _run(
        ["labgrid", "run", url, "--rig-file", str(tmp_path / "rigs.yaml"), "--",
         *STBLAB, "lab", "--rigs", "{rigs}", "--all-good", "--no-network", "--run-dir", str(run),
         "--rma-db", str(tmp_path / "rma.sqlite"), "--suite", "scenarios/test_agree.py"]
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    assert "stb-a: planned 1, run 1, passed 1, failed 0" in p.stdout  # lab.jobs' summary lines
    assert "stb-b: planned 1, run 1, passed 1, failed 0" in p.stdout
    assert (run / "stb-a" / "junit.xml").exists() and (run / "stb-b" / "junit.xml").exists()
    assert "acquired place stb-a" in p.stderr and "released place stb-b" in p.stderr
    assert _holders(grid) == {"stb-a": None, "stb-b": None}


@pytest.mark.slow  # starts stblab / labgrid-client processes
def test_exporter_killed_mid_run_turns_a_pass_into_an_infra_error_for_that_rig(
    fresh_grid: Grid, models: Path, tmp_path: Path
) -> None:
    grid = fresh_grid
    url = grid.url(model="STB-4K-X1", count=2, wait="20s", models=models, user="ci-302")
    # the command stands in for the rigs' pytest processes: it asks check_held for each rig
    child = (
        "import os, sys, time, json\n"
        "from lab.labgrid.source import check_held\n"
        "from lab.errors import InfraError\n"
        "print('ready', flush=True)\n"
        "status = os.environ['STBLAB_LABGRID_STATUS']\n"
        "deadline = time.monotonic() + 20\n"
        "while time.monotonic() < deadline:\n"
        "    try:\n"
        "        check_held(sys.argv[1], 'stb-b')\n"
        "    except InfraError as exc:\n"
        "        print('stb-b:', exc, flush=True)\n"
        "        check_held(sys.argv[1], 'stb-a')\n"
        "        print('stb-a ok', flush=True)\n"
        "        sys.exit(0)\n"
        "    time.sleep(0.1)\n"
        "sys.exit(9)\n"
    )
    proc = subprocess.Popen(
        [*STBLAB, "labgrid", "run", url, "--rig-file", str(tmp_path / "rigs.yaml"), "--",
         sys.executable, "-c", child, "{rigs}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    grid.exporters["labhost-2"].kill()
    out, err = proc.communicate(timeout=60)
    assert "stb-b: [rig stb-b, labgrid] exporter gone" in out and "stb-a ok" in out
    assert proc.returncode == 2, out + err  # the command passed, but a rig was lost: no verdict
    assert "infra error on rig stb-b: exporter gone: place stb-b" in err and "labhost-2/stb-b" in err
    assert _holders(grid) == {"stb-a": None, "stb-b": None}


@pytest.mark.slow  # six stblab processes
def test_janitor_frees_the_places_of_a_sigkilled_holder(grid: Grid, models: Path, tmp_path: Path) -> None:
    url = grid.url(model="STB-4K-X1", pool="ci", count=1, wait="20s", models=models, user="ci-303")
    proc = subprocess.Popen(
        [*STBLAB, "labgrid", "run", url, "--rig-file", str(tmp_path / "r.yaml"), "--",
         sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    os.killpg(proc.pid, signal.SIGKILL)  # no handler runs: the lock stays behind
    proc.wait(timeout=10)
    me = socket.gethostname()
    held = [n for n, h in _holders(grid).items() if h == f"{me}/ci-303"]
    assert len(held) == 1
    with grid.link("alice") as alice:
        other = "stb-b" if held[0] == "stb-a" else "stb-a"
        alice.acquire(other)  # an engineer's hand lock: not the janitor's business
        p = _run(["labgrid", "janitor", "--coordinator", grid.address, "--live-jobs", "4711", "--dry-run"])
        assert p.returncode == 0 and f"would free place {held[0]} of {me}/ci-303: job 303 is not running" in p.stdout
        assert _holders(grid)[held[0]] == f"{me}/ci-303"
        p = _run(["labgrid", "janitor", "--coordinator", grid.address, "--live-jobs", "4711,4712"])
        assert p.returncode == 0, p.stderr
        assert f"freed place {held[0]} of {me}/ci-303" in p.stdout
        assert "alice" not in p.stdout
        assert _holders(grid) == {held[0]: None, other: f"{me}/alice"}
        with grid.link("observer") as link:
            assert [r.owner for r in link.reservations()] == []  # the dead job's reservation went too
        p = _run(["labgrid", "janitor", "--coordinator", grid.address, "--older-than", "0s"])
        assert "nothing stale" in p.stdout  # age alone never takes an engineer's lock ...
        p = _run(["labgrid", "janitor", "--coordinator", grid.address, "--older-than", "0s", "--all-users"])
        assert f"freed place {other} of {me}/alice" in p.stdout  # ... unless told to
    p = _run(["labgrid", "janitor", "--coordinator", grid.address])
    assert p.returncode == 4 and "live job ids or an age limit" in p.stderr


@pytest.mark.slow
def test_gate_plan_two_host_jobs_then_one_verdict(
    grid: Grid, models: Path, tmp_path: Path, emulated: tuple[Path, dict[str, Rig], Path]
) -> None:
    rig_file, _, _ = emulated
    keys = rig_file.parent / "keys"
    image = tmp_path / "fw.img"
    p = _run(["firmware", "build", "--model", "STB-4K-X1", "--version", "2.0.0", "--build-id", "b2000",
              "--key", str(keys / "vendor_ed25519"), "-o", str(image)])  # fmt: skip
    assert p.returncode == 0, p.stderr
    url = grid.url(model="STB-4K-X1", pool="ci", wait="60s", models=models)
    plan_dir = ["-o", str(tmp_path / "plan")]
    p = _run(["labgrid", "gate-plan", url, "--image", str(image), *plan_dir])  # the places' models trust no key
    assert p.returncode == 4 and "image refused (untrusted-key)" in p.stderr
    other = tmp_path / "other.img"
    _run(["firmware", "build", "--model", "STB-HD-2", "--version", "2.0.0", "--key", str(keys / "vendor_ed25519"),
          "-o", str(other)])  # fmt: skip
    p = _run(["labgrid", "gate-plan", url, "--image", str(other), "--trusted-key", str(keys / "vendor_ed25519.pub"),
              *plan_dir])  # fmt: skip
    assert p.returncode == 4 and "image refused (wrong-model)" in p.stderr and not (tmp_path / "plan").exists()
    p = _run(["labgrid", "gate-plan", url, "--image", str(image), "--trusted-key", str(keys / "vendor_ed25519.pub"),
              *plan_dir])  # fmt: skip
    assert p.returncode == 0, p.stderr
    plan = json.loads((tmp_path / "plan" / "gate-plan.json").read_text())
    assert [(j["host"], j["places"]) for j in plan["jobs"]] == [("labhost-1", ["stb-a"]), ("labhost-2", ["stb-b"])]
    assert "host=labhost-2" in plan["jobs"][1]["rigs"] and plan["image"]["version"] == "2.0.0"
    matrix = json.loads((tmp_path / "plan" / "gate-matrix.json").read_text())
    assert [m["host"] for m in matrix["include"]] == ["labhost-1", "labhost-2"]
    pipeline = (tmp_path / "plan" / "gate-child-pipeline.yml").read_text()
    assert "gate-labhost-1:" in pipeline and "tags:\n  - labhost-2" in pipeline and "gate-collect" in pipeline
    procs = {}
    for job in plan["jobs"]:  # what the two CI jobs run, each on its own lab host (the gate holds its places)
        host = job["host"]
        procs[host] = subprocess.Popen(
            [*STBLAB, "firmware", "gate", str(image), "--rigs", job["rigs"],
             "--run-dir", str(tmp_path / f"gate-{host}"), "--suite", "scenarios/test_agree.py",
             "--trusted-key", str(keys / "vendor_ed25519.pub"), "--rma-db", str(tmp_path / "rma.sqlite")],
            env=dict(os.environ, CI_JOB_ID=f"job-{host}"), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
    outs = {h: pr.communicate(timeout=300)[0] for h, pr in procs.items()}
    for h, pr in procs.items():
        assert pr.returncode == 0, outs[h]
        assert f"as {socket.gethostname()}/ci-job-{h}" in outs[h]
    assert _holders(grid) == {"stb-a": None, "stb-b": None}  # each gate released its place
    dirs = [str(tmp_path / f"gate-{h}") for h in procs]
    p = _run(["labgrid", "gate-collect", "--plan", str(tmp_path / "plan" / "gate-plan.json"), *dirs])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "results from hosts: labhost-1, labhost-2" in p.stdout and "PASS: the build may ship" in p.stdout
    # a plan whose second host job never ran: not run, never a pass
    p = _run(["labgrid", "gate-collect", "--plan", str(tmp_path / "plan" / "gate-plan.json"), dirs[0]])
    assert p.returncode == 5  # incomplete (lab.outcome's table), as the gate for a rig that did not run
    assert "place stb-b did not run (no result)" in p.stdout and "no verdict" in p.stdout
