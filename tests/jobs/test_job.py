"""The job runner end to end on emulated rigs: plan, bad input, time limits, SIGTERM, no leftovers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lab.jobs import JobInputError, JobSpec, run_job, write_all
from lab.outcome import ExitCode, Outcome

from .conftest import processes_mentioning, wait_until

REPO = Path(__file__).resolve().parents[2]

# The tests around the hang carry a generous limit of their own, so the job's test_timeout can be
# short (it ends the hang) without a slow login on a busy host timing them out too.
SUITE = """
import time
import pytest

@pytest.mark.stb_timeout(120)
def test_boots(stb):
    stb.run("true")

def test_blocks_for_ever(stb):
    while True:
        time.sleep(1)

@pytest.mark.stb(features=["teleport"])
def test_needs_a_feature_no_rig_has(stb):
    pass

@pytest.mark.stb_timeout(120)
def test_after_the_hang(stb):
    stb.run("true")
"""


def _suite(tmp_path: Path, text: str = SUITE) -> Path:
    folder = tmp_path / "suite"
    folder.mkdir(exist_ok=True)
    (folder / "test_job_suite.py").write_text(text)
    return folder


@pytest.mark.slow
def test_a_hung_test_is_timed_out_on_every_rig_and_the_others_are_kept(lab_rigs, tmp_path):
    spec = JobSpec(rig_file=lab_rigs, rigs=["good", "bad"], suite=[str(_suite(tmp_path))], run_dir=tmp_path / "run",
                   test_timeout=3, rma_db=str(tmp_path / "rma.sqlite"))  # fmt: skip
    t0 = time.monotonic()
    result = run_job(spec, live=False, echo=lambda _: None)
    assert time.monotonic() - t0 < 120
    for rig in ("good", "bad"):
        r = result.rig(rig)
        by_name = {t.nodeid.rsplit("::", 1)[-1]: t for t in r.tests}
        assert {k: t.outcome for k, t in by_name.items()} == {
            "test_boots": Outcome.PASSED,
            "test_blocks_for_ever": Outcome.TIMED_OUT,
            "test_after_the_hang": Outcome.PASSED,
        }, r.tests
        assert "test_needs_a_feature_no_rig_has" in " ".join(r.left_out), "left out when planning, not skipped"
        assert len(r.planned) == 3 and r.finished
        hung = by_name["test_blocks_for_ever"]
        stack = Path(hung.evidence[0]) / "stack.txt"
        assert "test_blocks_for_ever" in stack.read_text()
    assert result.exit_code() is ExitCode.INFRA_ERROR and not result.all_passed()
    assert result.first_line().startswith("good: planned 3, run 3, passed 2, failed 0, errors 0, timed out 1")
    write_all(result, "job test")
    junit = ET.parse(result.run_dir / "junit.xml").getroot()
    assert len(list(junit.iter("error"))) == 2 and not list(junit.iter("failure"))
    md = (result.run_dir / "summary.md").read_text()
    assert "timed\\_out" in md or "timed_out" in md
    assert not processes_mentioning(str(result.run_dir)), "no process of the job outlives it"


@pytest.mark.slow
def test_a_selection_that_collects_nothing_is_bad_input(lab_rigs, tmp_path):
    suite = _suite(tmp_path)
    spec = JobSpec(rig_file=lab_rigs, rigs=["good"], suite=[str(suite), "-k", "nomatchxyz"], run_dir=tmp_path / "r")
    with pytest.raises(JobInputError, match="the suite selects no tests"):
        run_job(spec, live=False, echo=lambda _: None)
    spec.suite = [str(suite / "does_not_exist.py")]
    with pytest.raises(JobInputError, match="not found"):
        run_job(spec, live=False, echo=lambda _: None)
    assert not (tmp_path / "r" / "good" / "pytest.log").exists(), "nothing ran"


DRIVER = """
import json, sys
from pathlib import Path
from lab.jobs import JobSpec, run_job, write_all
spec = JobSpec(rig_file=Path(sys.argv[1]), rigs=["good", "bad"], suite=[sys.argv[2]], run_dir=Path(sys.argv[3]),
               test_timeout=600)
result = run_job(spec, live=False)
write_all(result, "sigterm test")
sys.exit(int(result.exit_code()))
"""


@pytest.mark.slow
def test_sigterm_to_a_running_job_writes_the_partial_result_and_leaves_nothing(lab_rigs, tmp_path):
    suite = _suite(tmp_path)
    run = tmp_path / "run"
    log = (tmp_path / "driver.log").open("w")
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(lab_rigs), str(suite), str(run)], cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    events = [run / rig / "events.jsonl" for rig in ("good", "bad")]
    hanging = wait_until(lambda: all(p.exists() and "test_blocks_for_ever" in p.read_text() for p in events), 90)
    assert hanging, (tmp_path / "driver.log").read_text()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    out = (tmp_path / "driver.log").read_text()
    assert proc.returncode == ExitCode.INCOMPLETE, out
    job = json.loads((run / "job.json").read_text())
    assert job["stopped"] == "SIGTERM"
    for rig in job["rigs"]:
        outcomes = {t["nodeid"].rsplit("::", 1)[-1]: t["outcome"] for t in rig["tests"]}
        assert outcomes == {"test_boots": "passed", "test_blocks_for_ever": "not_run", "test_after_the_hang": "not_run"}
    assert not processes_mentioning(str(run)), "no process of the job outlives it"


STUCK = """
import signal
import time
import pytest

@pytest.mark.stb_timeout(120)
def test_boots(stb):
    stb.run("true")

def test_blocks_for_ever(stb):
    while True:
        time.sleep(1)

def test_stuck_where_signals_do_not_reach(stb):
    # takes the plugin's timer signal and Ctrl-C away: only the runner's kill can end it
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        time.sleep(1)

def test_after_the_stuck_one(stb):
    stb.run("true")
"""


@pytest.mark.slow
def test_rig_file_limits_apply_and_a_rig_stuck_past_them_is_killed_with_its_stack(lab_rigs, tmp_path):
    """``timeouts: {test: 4, rig: 30}`` in the rig file: the plugin ends the first hang at 4 s; the
    second ignores the plugin's signal, so the runner kills the rig's process group at 30 s."""
    import yaml

    raw = yaml.safe_load(lab_rigs.read_text())
    raw["rigs"] = [r for r in raw["rigs"] if r["name"] == "good"]
    raw["rigs"][0]["timeouts"] = {"test": 4, "rig": 30}
    rig_file = tmp_path / "rigs.yaml"
    rig_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    spec = JobSpec(rig_file=rig_file, rigs=["good"], suite=[str(_suite(tmp_path, STUCK))], run_dir=tmp_path / "run",
                   kill_grace=3)  # fmt: skip
    result = run_job(spec, live=False, echo=lambda _: None)
    r = result.rig("good")
    outcomes = {t.nodeid.rsplit("::", 1)[-1]: t for t in r.tests}
    assert outcomes["test_boots"].outcome is Outcome.PASSED
    assert outcomes["test_blocks_for_ever"].outcome is Outcome.TIMED_OUT
    assert "over its 4 s time limit" in outcomes["test_blocks_for_ever"].reason
    stuck = outcomes["test_stuck_where_signals_do_not_reach"]
    assert stuck.outcome is Outcome.TIMED_OUT and "rig time limit 30 s" in stuck.reason, stuck
    assert "test_stuck_where_signals_do_not_reach" in Path(stuck.evidence[0]).read_text(), "the stack where it hung"
    assert outcomes["test_after_the_stuck_one"].outcome is Outcome.NOT_RUN
    assert r.ended == "killed: rig time limit 30 s"
    assert result.exit_code() is ExitCode.INFRA_ERROR
    assert not processes_mentioning(str(result.run_dir)), "the rig's process group is gone"
