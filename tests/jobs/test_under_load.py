"""Verdicts that hold under load: the main job gives, with both cores kept busy by ``stress-ng --cpu 2``,
the verdicts it gives on an idle machine (good box passes, defective box fails the same way).

The idle verdicts are written out in :data:`IDLE_VERDICTS` rather than measured again here: an idle
run of the same job doubled the test's time (~45 s) and checked nothing the table does not (the
main job on an idle machine is also run by tests/plugin/test_runner.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import FAST_BOOT as _FAST_BOOT

from lab.emulator.testing import rig_entry

REPO = Path(__file__).resolve().parents[2]
#: The suite's fast boot, with a whole second to stop autoboot: the bootloader scenario runs under stress-ng.
FAST_BOOT = {**_FAST_BOOT, "countdown_step": 1.0}
CATALOGUE = {"2.1.0": [{"kind": "decoder_freeze", "after_zaps": 5}]}
SUITE = ["scenarios/test_boot.py", "scenarios/test_zapping.py"]
#: What the job gives on an idle machine: exit 1 (device faults and nothing else), every test passes
#: on stb-a, stb-b (switched to 2.1.0, which freezes the picture after 5 zaps) fails zapping only.
IDLE_VERDICTS = (
    1,
    {
        ("stb-a", "test_boot_to_shell"): "passed",
        ("stb-a", "test_bootloader_then_boot"): "passed",
        ("stb-a", "test_channel_zapping"): "passed",
        ("stb-b", "test_boot_to_shell"): "passed",
        ("stb-b", "test_bootloader_then_boot"): "passed",
        ("stb-b", "test_channel_zapping"): "device_fault",
    },
    {("stb-b", "video-frozen")},
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("stress-ng") is None, reason="needs stress-ng (scripts/setup installs it)"),
]


def _rigs(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rigs = [
        rig_entry(directory, "stb-a", firmware="2.0.0", defects=CATALOGUE, boot=FAST_BOOT),
        rig_entry(directory, "stb-b", firmware="2.0.0", defects=CATALOGUE, boot=FAST_BOOT),
    ]
    path = directory / "rigs.yaml"
    path.write_text(yaml.safe_dump({"rigs": rigs}, sort_keys=False), encoding="utf-8")
    return path


def _verdicts(tmp_path: Path, name: str) -> tuple[int, dict[tuple[str, str], str], set[tuple[str, str]]]:
    """Run the main job (stb-b switched to its defective firmware) and return (exit code,
    outcome per rig and test, (rig, fault symptom) of every device fault)."""
    rigs = _rigs(tmp_path / f"lab-{name}")
    run = tmp_path / f"run-{name}"
    cmd = [sys.executable, "-m", "lab.cli", "lab", "--rigs", str(rigs), "--run-dir", str(run),
           "--rma-db", str(tmp_path / f"{name}.sqlite"), "--test-timeout", "120", "--job-timeout", "600"]  # fmt: skip
    for s in SUITE:
        cmd += ["--suite", str(REPO / s)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert (run / "job.json").exists(), proc.stdout + proc.stderr
    job = json.loads((run / "job.json").read_text())
    outcomes = {(r["rig"], t["nodeid"].rsplit("::", 1)[-1]): t["outcome"] for r in job["rigs"] for t in r["tests"]}
    faults = {(r["rig"], t["reason"].split(":", 1)[0]) for r in job["rigs"] for t in r["tests"]
              if t["outcome"] == "device_fault"}  # fmt: skip
    return proc.returncode, outcomes, faults


def test_the_main_job_gives_the_same_faults_under_a_cpu_hog(tmp_path):
    hog = subprocess.Popen(["stress-ng", "--cpu", "2", "--timeout", "900", "-q"], start_new_session=True)
    try:
        loaded = _verdicts(tmp_path, "loaded")
    finally:
        hog.terminate()
        hog.wait(timeout=30)
    assert loaded == IDLE_VERDICTS, f"idle {IDLE_VERDICTS}\nloaded {loaded}"
