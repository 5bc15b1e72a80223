"""Verdicts that hold under load: the main job gives the same faults with both cores kept busy by
``stress-ng --cpu 2`` as on an idle machine (good box passes, defective box fails the same way)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lab.emulator.testing import rig_entry

REPO = Path(__file__).resolve().parents[2]
FAST_BOOT = {"bootdelay": 1}
CATALOGUE = {"2.1.0": [{"kind": "decoder_freeze", "after_zaps": 5}]}
SUITE = ["scenarios/test_boot.py", "scenarios/test_zapping.py"]

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
    idle = _verdicts(tmp_path, "idle")
    hog = subprocess.Popen(["stress-ng", "--cpu", "2", "--timeout", "900", "-q"], start_new_session=True)
    try:
        loaded = _verdicts(tmp_path, "loaded")
    finally:
        hog.terminate()
        hog.wait(timeout=30)
    code, outcomes, faults = idle
    assert code == 1, idle  # stb-b on defective firmware: device faults, nothing else
    assert all(o == "passed" for (rig, _), o in outcomes.items() if rig == "stb-a"), outcomes
    assert faults and {rig for rig, _ in faults} == {"stb-b"}, faults
    assert loaded == idle, f"idle {idle}\nloaded {loaded}"
