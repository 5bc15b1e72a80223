"""The robustness scenarios against the emulated lab: power cuts during an update pass on good firmware
and find the brick on a firmware whose update is not power-safe; the main suite leaves them out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.emulator.testing import write_rig_file

pytestmark = [pytest.mark.explore, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
# Writing an image takes 2 s: with 6 stratified cuts over a ~5.5 s update, two slices fit in the
# write window whatever the seed, so the torn update is always cut mid-write.
BOOT = {"bootdelay": 1, "kmsg_interval": 0, "flash_seconds": 2.0, "watchdog_seconds": 0.3}


def _pytest(rig_file: Path, rig: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-file-faults", *args]
    cmd += ["--rigs", str(rig_file), "--rig", rig, "--run-dir", str(tmp / f"run-{rig}"), "--seed", "5"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO, env=env)


def test_update_power_cuts_pass_on_good_firmware_and_find_a_torn_update(tmp_path: Path) -> None:
    torn = {"2.0.1": [{"kind": "torn_update"}]}
    rig_file = write_rig_file(tmp_path / "lab", ["good", "torn"], boot=BOOT, per_rig={"torn": {"defects": torn}})
    scenario = "scenarios/robustness/test_update_power_cuts.py"
    good = _pytest(rig_file, "good", tmp_path, scenario, "--cut-points", "6")
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-2000:]
    assert "1 passed" in good.stdout
    bad = _pytest(rig_file, "torn", tmp_path, scenario, "--cut-points", "6")
    assert bad.returncode == 1, bad.stdout[-3000:]
    assert "update-bricked" in bad.stdout and "bricked: no login prompt" in bad.stdout


def test_the_main_suite_leaves_the_robustness_scenarios_out(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "scenarios"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert "test_zapping" in out.stdout and "robustness" not in out.stdout, out.stdout[-2000:]
    named = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "scenarios/robustness"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert "test_power_cuts_during_update_never_brick_the_box" in named.stdout, named.stdout[-2000:]


def test_soak_finds_a_slow_leak_with_its_interval_and_none_on_good_firmware(tmp_path: Path) -> None:
    slow = {"2.0.0": [{"kind": "memory_leak", "kb_per_zap": 0, "kb_per_second": 400}]}
    rig_file = write_rig_file(tmp_path / "lab", ["good", "leaky"], boot=BOOT, per_rig={"leaky": {"defects": slow}})
    scenario = "scenarios/robustness/test_soak.py"
    opts = ("--soak-minutes", "0.4", "--soak-interval", "2")
    good = _pytest(rig_file, "good", tmp_path, scenario, *opts)
    assert good.returncode == 0, good.stdout[-3000:]
    leaky = _pytest(rig_file, "leaky", tmp_path, scenario, *opts)
    assert leaky.returncode == 1, leaky.stdout[-3000:]
    assert "memory-leak" in leaky.stdout and "95 % interval" in leaky.stdout
    plot = next((tmp_path / "run-leaky" / "leaky").glob("*/soak-memory.png"))
    assert plot.stat().st_size > 1000
