"""`stblab explore` against the emulated lab: it finds a seeded sequence defect, shrinks it, writes a
scenario that reproduces it (and passes on good firmware), files it, and finds nothing on good firmware."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from explore.runs import FAST_BOOT, REPO, run_together, scenario_cmd
from lab.emulator.testing import EmulatedLab, write_rig_file

pytestmark = [pytest.mark.explore, pytest.mark.slow]

KEYS = "KEY_CHANNELUP,KEY_CHANNELDOWN,KEY_INFO,KEY_OK"
SEQUENCE = {
    "2.9.0": [{"kind": "key_window", "keys": ["KEY_CHANNELUP", "KEY_CHANNELUP"], "within": 0.6, "effect": "panic"}]
}


@pytest.fixture(scope="module")
def rig_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One emulated lab for the module: ``ex`` runs the defective firmware, ``good`` good firmware."""
    path = write_rig_file(
        tmp_path_factory.mktemp("explore") / "lab",
        ["ex", "good"],
        firmware="2.9.0",
        defects=SEQUENCE,
        boot=FAST_BOOT,
        per_rig={"good": {"firmware": "2.0.0"}},
    )
    with EmulatedLab(path):
        yield path


def _explore(
    rig_file: Path, rig: str, tmp: Path, seed: int, budget: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "lab.cli", "explore", "--rigs", str(rig_file), "--rig", rig, "--seed", str(seed)]
    cmd += ["--budget", budget, "--keys", KEYS, "--episode", "8", "--measure", "3", "--emulate", "auto"]
    cmd += ["--out", str(tmp / "found"), "--run-dir", str(tmp / "run"), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)


def test_explorer_finds_shrinks_writes_and_files_a_sequence_defect(rig_file: Path, tmp_path: Path) -> None:
    db = tmp_path / "rma.sqlite"
    run = _explore(rig_file, "ex", tmp_path, 11, "180s", "--rma-db", str(db))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "kernel-oops" in run.stdout
    evidence = next((tmp_path / "run").glob("ex-seed11-kernel-oops"))
    minimal = json.loads((evidence / "minimal.json").read_text())
    original = json.loads((evidence / "original.json").read_text())
    assert [e["arg"] for e in minimal] == ["KEY_CHANNELUP", "KEY_CHANNELUP"]
    assert minimal[1]["gap"] < 0.6 and len(minimal) <= max(2, len(original) // 4) or len(original) < 8
    assert "reproduced 3 of 3" in run.stdout or "reproduced 2 of 3" in run.stdout
    scenario = tmp_path / "found" / "test_kernel_oops_seed11.py"
    text = scenario.read_text()
    assert text.count("remote.press('KEY_CHANNELUP')") == 2 and "seed: 11" in text and "firmware: 2.9.0" in text

    # The reproducer fails on the defective firmware with the same symptom, and passes on good
    # firmware (both replays at once: each waits on its own box's boot).
    opts = ("--rootdir", str(tmp_path), str(scenario))
    runs = run_together(
        {rig: scenario_cmd(rig_file, rig, tmp_path / f"replay-{rig}", *opts) for rig in ("ex", "good")},
        cwd=tmp_path,
    )
    bad, good = runs["ex"], runs["good"]
    assert bad.returncode == 1 and "kernel-oops" in bad.stdout + bad.stderr, bad.stdout[-3000:]
    assert good.returncode == 0, good.stdout[-3000:]

    # Filed with the reproducer and both sequences as evidence.
    show = subprocess.run(
        [sys.executable, "-m", "lab.cli", "rma", "faults", "--db", str(db), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    faults = json.loads(show.stdout)
    assert len(faults) == 1
    assert faults[0]["kind"] != "other" and "stb_osd_menu_select" in faults[0]["title"], faults[0]


def test_explorer_finds_nothing_on_good_firmware(rig_file: Path, tmp_path: Path) -> None:
    hogs = ("--shell", "hog cpu 2", "--shell", "hog mem 64", "--shell", "hog stop", "--shell-rate", "0.15")
    run = _explore(rig_file, "good", tmp_path, 11, "25s", "--power-events", "0.1", *hogs)
    assert run.returncode == 0, run.stdout + run.stderr
    assert ", 0 faults" in run.stdout
    assert not (tmp_path / "found").exists()
