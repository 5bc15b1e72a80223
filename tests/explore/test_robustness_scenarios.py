"""The robustness scenarios against the emulated lab: power cuts during an update pass on good firmware
and find the brick on a firmware whose update is not power-safe; the main suite leaves them out."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

from explore.runs import FAST_BOOT, run_together, scenario_cmd
from lab.emulator.testing import EmulatedLab, write_rig_file

pytestmark = [pytest.mark.explore, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
# Writing an image takes 2 s: with 6 stratified cuts over a ~4.5 s update, two slices fit in the
# write window whatever the seed, so the torn update is always cut mid-write.
BOOT = {**FAST_BOOT, "flash_seconds": 2.0, "watchdog_seconds": 0.3}
TORN = {"2.0.1": [{"kind": "torn_update"}]}
SLOW_LEAK = {"2.0.0": [{"kind": "memory_leak", "kb_per_zap": 0, "kb_per_second": 400}]}


@pytest.fixture(scope="module")
def rig_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One emulated lab for the module: good and torn-update boxes, a calm and a leaking one."""
    path = write_rig_file(
        tmp_path_factory.mktemp("robustness") / "lab",
        ["good", "torn", "calm", "leaky"],
        boot=BOOT,
        per_rig={"torn": {"defects": TORN}, "leaky": {"defects": SLOW_LEAK}},
    )
    with EmulatedLab(path):
        yield path


def test_update_power_cuts_pass_on_good_firmware_and_find_a_torn_update(rig_file: Path, tmp_path: Path) -> None:
    args = ("scenarios/robustness/test_update_power_cuts.py", "--cut-points", "6", "--seed", "5")
    runs = run_together(
        {
            rig: scenario_cmd(rig_file, rig, tmp_path / f"run-{rig}", *args, f"--junitxml={tmp_path / rig}.xml")
            for rig in ("good", "torn")
        }
    )
    good, bad = runs["good"], runs["torn"]
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-2000:]
    assert "1 passed" in good.stdout
    # The box went back to 2.0.0 before each cut, so every cut interrupted 2.0.0 -> 2.0.1 and the
    # outcome tells a completed update from one that was stopped or fell back.
    props = {p.get("name"): p.get("value") for p in ElementTree.parse(tmp_path / "good.xml").iter("property")}
    assert props["restores_to"] == "2.0.0", props
    cuts = props["cuts"].split(", ")
    assert len(cuts) == 6 and all("2.0.0->2.0.1:" in c for c in cuts), cuts
    assert any("(updated)" in c for c in cuts) and any("(kept)" in c or "(fell back)" in c for c in cuts), cuts
    assert int(props["restores"]) == 1 + sum("(updated)" in c for c in cuts[:-1]), props
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


def test_soak_finds_a_slow_leak_with_its_interval_and_none_on_good_firmware(rig_file: Path, tmp_path: Path) -> None:
    args = ("scenarios/robustness/test_soak.py", "--soak-minutes", "0.4", "--soak-interval", "2", "--seed", "5")
    runs = run_together({rig: scenario_cmd(rig_file, rig, tmp_path / f"run-{rig}", *args) for rig in ("calm", "leaky")})
    good, leaky = runs["calm"], runs["leaky"]
    assert good.returncode == 0, good.stdout[-3000:]
    assert leaky.returncode == 1, leaky.stdout[-3000:]
    assert "memory-leak" in leaky.stdout and "95 % interval" in leaky.stdout
    plot = next((tmp_path / "run-leaky" / "leaky").glob("*/soak-memory.png"))
    assert plot.stat().st_size > 1000
