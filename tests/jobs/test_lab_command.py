"""`stblab lab` with a scenario that blocks for ever: ends on its own under --test-timeout, reports the
test as timed out on every rig with its stack, keeps the other results; SIGTERM writes the partial
summary; nothing the job started (pytest, emulators) outlives it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lab.outcome import ExitCode

from .conftest import processes_mentioning, wait_until, write_rigs

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

# The tests around the hang carry a generous limit of their own, so --test-timeout can be short
# (it ends the hang) without a slow login on a busy host timing them out too.
HANG = """
import time
import pytest

@pytest.mark.stb_timeout(120)
def test_boots(shell):
    pass

def test_blocks_for_ever(stb):
    while True:
        time.sleep(1)

@pytest.mark.stb_timeout(120)
def test_after(stb):
    stb.run("true")
"""


def _lab(tmp_path: Path, *args: str) -> tuple[list[str], Path]:
    suite = tmp_path / "suite" / "test_hang.py"
    suite.parent.mkdir(parents=True, exist_ok=True)
    suite.write_text(HANG)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "lab.cli", "lab", "--rigs", str(write_rigs(tmp_path / "lab")), "--all-good",
           "--run-dir", str(run), "--rma-db", str(tmp_path / "rma.sqlite"), "--suite", str(suite), *args]  # fmt: skip
    return cmd, run


def test_a_test_that_blocks_for_ever_is_timed_out_on_every_rig_and_the_rest_is_kept(tmp_path):
    cmd, run = _lab(tmp_path, "--test-timeout", "3")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == ExitCode.INFRA_ERROR, proc.stdout + proc.stderr
    first = proc.stdout.split("stblab lab summary", 1)[1].splitlines()[1].strip()
    assert first == (
        "good: planned 3, run 3, passed 2, failed 0, errors 0, timed out 1, skipped 0, not run 0 | "
        "bad: planned 3, run 3, passed 2, failed 0, errors 0, timed out 1, skipped 0, not run 0"
    ), proc.stdout
    for rig in ("good", "bad"):
        assert "test_blocks_for_ever" in (run / rig / "test_blocks_for_ever" / "stack.txt").read_text()
    junit = ET.parse(run / "junit.xml").getroot()
    timed = [c.get("name") for c in junit.iter("testcase") if c.find("error") is not None]
    assert timed == ["test_blocks_for_ever", "test_blocks_for_ever"]
    assert "timed\\_out" in (run / "summary.md").read_text()
    assert not processes_mentioning(str(run)), "neither pytest nor the emulators outlive the job"


def test_sigterm_to_stblab_lab_writes_the_partial_summary_and_leaves_no_process(tmp_path):
    cmd, run = _lab(tmp_path)
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    events = [run / rig / "events.jsonl" for rig in ("good", "bad")]
    hanging = wait_until(lambda: all(p.exists() and "test_blocks_for_ever" in p.read_text() for p in events), 120)
    assert hanging, (tmp_path / "lab.log").read_text()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == ExitCode.INCOMPLETE, (tmp_path / "lab.log").read_text()
    job = json.loads((run / "job.json").read_text())
    assert job["stopped"] == "SIGTERM" and (run / "summary.html").exists()
    for rig in job["rigs"]:
        outcomes = [t["outcome"] for t in rig["tests"]]
        assert outcomes == ["passed", "not_run", "not_run"], rig
    assert not processes_mentioning(str(run)), "neither pytest nor the emulators outlive the job"
