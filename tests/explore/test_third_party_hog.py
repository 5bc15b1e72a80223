"""The third-party-software scenario against the emulated lab: with a CPU, memory, file-descriptor or
crash-looping hog on the box the user-facing checks pass on good firmware, and the scenario fails on a
firmware whose UI app dies beside a memory hog (the ``hog_sensitive`` seeded defect)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lab.emulator.testing import write_rig_file

pytestmark = [pytest.mark.explore, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BOOT = {"bootdelay": 1, "kmsg_interval": 0}
SCENARIO = "scenarios/robustness/test_third_party_hog.py"


def _pytest(rig_file: Path, rig: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-file-faults", SCENARIO, *args]
    cmd += ["--rigs", str(rig_file), "--rig", rig, "--run-dir", str(tmp / f"run-{rig}"), "--seed", "5"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO, env=env)


def test_hogs_pass_on_good_firmware_and_a_hog_sensitive_ui_app_fails(tmp_path: Path) -> None:
    sensitive = {"2.0.0": [{"kind": "hog_sensitive", "above_mb": 128}]}
    rig_file = write_rig_file(
        tmp_path / "lab", ["good", "sensitive"], boot=BOOT, per_rig={"sensitive": {"defects": sensitive}}
    )
    good = _pytest(rig_file, "good", tmp_path)
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-2000:]
    assert "4 passed" in good.stdout, good.stdout[-2000:]
    junit = (tmp_path / "run-good" / "junit.xml").read_text()
    crashes = [int(n) for n in re.findall(r'name="hog_crashes_seen" value="(\d+)"', junit)]
    assert len(crashes) == 4 and crashes.count(0) == 3 and max(crashes) >= 1, crashes  # only the crash loop
    assert "app_hog[" in (tmp_path / "run-good" / "good" / "console.log").read_text()

    bad = _pytest(rig_file, "sensitive", tmp_path, "-k", "mem or cpu")
    assert bad.returncode == 1, bad.stdout[-3000:]
    assert "1 failed" in bad.stdout and "1 passed" in bad.stdout, bad.stdout[-2000:]
    assert "while the mem hog ran: segfault" in bad.stdout and "stb_app[412]" in bad.stdout
