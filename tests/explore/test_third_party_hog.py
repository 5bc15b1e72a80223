"""The third-party-software scenario against the emulated lab: with a CPU, memory, file-descriptor or
crash-looping hog on the box the user-facing checks pass on good firmware, and the scenario fails on a
firmware whose UI app dies beside a memory hog (the ``hog_sensitive`` seeded defect)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from explore.runs import FAST_BOOT, run_together, scenario_cmd
from lab.emulator.testing import EmulatedLab, write_rig_file

pytestmark = [pytest.mark.explore, pytest.mark.slow]

SCENARIO = "scenarios/robustness/test_third_party_hog.py"


def test_hogs_pass_on_good_firmware_and_a_hog_sensitive_ui_app_fails(tmp_path: Path) -> None:
    sensitive = {"2.0.0": [{"kind": "hog_sensitive", "above_mb": 128}]}
    rig_file = write_rig_file(
        tmp_path / "lab", ["good", "sensitive"], boot=FAST_BOOT, per_rig={"sensitive": {"defects": sensitive}}
    )
    seed = ("--seed", "5")
    with EmulatedLab(rig_file):
        runs = run_together(
            {
                "good": scenario_cmd(rig_file, "good", tmp_path / "run-good", SCENARIO, *seed),
                "bad": scenario_cmd(rig_file, "sensitive", tmp_path / "run-bad", SCENARIO, *seed, "-k", "mem or cpu"),
            }
        )
    good, bad = runs["good"], runs["bad"]
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-2000:]
    assert "4 passed" in good.stdout, good.stdout[-2000:]
    junit = (tmp_path / "run-good" / "junit.xml").read_text()
    crashes = [int(n) for n in re.findall(r'name="hog_crashes_seen" value="(\d+)"', junit)]
    assert len(crashes) == 4 and crashes.count(0) == 3 and max(crashes) >= 1, crashes  # only the crash loop
    assert "app_hog[" in (tmp_path / "run-good" / "good" / "console.log").read_text()

    assert bad.returncode == 1, bad.stdout[-3000:]
    assert "1 failed" in bad.stdout and "1 passed" in bad.stdout, bad.stdout[-2000:]
    assert "while the mem hog ran: segfault" in bad.stdout and "stb_app[412]" in bad.stdout
