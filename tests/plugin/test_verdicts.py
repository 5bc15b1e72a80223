"""Verdicts from evidence: every test gets an Outcome; hangs, pytest.fail and unclassified errors are
never device faults; a frozen emulator is the lab's failure and files nothing."""

from __future__ import annotations

import os
import signal
import time

import pytest

from lab.device_health import emulator_pid_file, process_state
from lab.emulator.testing import EmulatedLab
from lab.rig import load_rigs

from .conftest import write_two_rigs

# --test-timeout 4 ends the hang; the tests around it carry a generous limit of their own (a slow
# login on a busy host must not time them out), except the one showing that a marker raises the
# limit: it sleeps past the run's 4 s.
HANG_AND_FRIENDS = """
import time
import pytest

@pytest.mark.stb_timeout(120)
def test_passes(stb):
    stb.run("true")

def test_blocks_for_ever(stb):
    while True:
        time.sleep(1)

@pytest.mark.stb_timeout(120)
def test_fails_through_pytest_fail(stb):
    pytest.fail("the scenario gave up")

@pytest.mark.stb_timeout(120)
def test_raises_something_unclassified(stb):
    {}["missing"]

@pytest.mark.stb_timeout(120)
def test_is_skipped(stb):
    pytest.skip("not on this rig")

@pytest.mark.stb_timeout(60)
def test_a_marker_raises_the_limit(stb):
    time.sleep(5)
"""


@pytest.mark.slow
def test_every_test_has_an_outcome_and_a_hang_is_timed_out_with_its_stack(two_rigs, run_inner, pytester):
    pytester.makepyfile(test_outcomes_all=HANG_AND_FRIENDS)
    t0 = time.monotonic()
    run = run_inner(two_rigs, "--rig", "good", "--test-timeout", "4")
    assert time.monotonic() - t0 < 120
    tests = {t["nodeid"].split("::")[-1]: t for t in run.summary()["tests"]}
    assert {k: v["outcome"] for k, v in tests.items()} == {
        "test_passes": "passed",
        "test_blocks_for_ever": "timed_out",
        "test_fails_through_pytest_fail": "test_error",
        "test_raises_something_unclassified": "test_error",
        "test_is_skipped": "skipped",
        "test_a_marker_raises_the_limit": "passed",
    }
    hung = tests["test_blocks_for_ever"]
    assert "over its 4 s time limit" in hung["reason"] and "test_outcomes_all.py" in hung["reason"], hung
    [evidence] = hung["evidence"]
    stack = run.run_dir / "good" / "test_blocks_for_ever" / "stack.txt"
    assert str(stack.parent) == evidence, evidence
    assert "test_blocks_for_ever" in stack.read_text(), "the stack shows where the test hung"
    assert (stack.parent / "console-excerpt.txt").exists(), "the console tail is evidence too"
    assert run.summary()["outcome"] == "infra_error"
    props = run.properties("test_blocks_for_ever")
    assert props["stblab_outcome"] == "timed_out"
    assert not run.db.exists() or _no_faults(run.db), "nothing is filed when the box was not shown at fault"


def _no_faults(db) -> bool:
    from lab.rma import RmaStore

    with RmaStore(db) as store:
        return not store.faults()


SIGSTOP_TEST = """
import os, signal, threading

def test_console_waits_while_the_emulator_is_stopped(shell, console):
    pid = int(os.environ["EMULATOR_PID"])
    threading.Timer(0.5, os.kill, (pid, signal.SIGSTOP)).start()
    console.sendline("echo hello")
    console.expect("this never appears", timeout=3)
"""


@pytest.mark.slow
def test_a_stopped_emulator_is_infra_and_files_nothing(pytester, run_inner, tmp_path):
    rig_file = write_two_rigs(tmp_path / "lab")
    pytester.makepyfile(test_sigstop=SIGSTOP_TEST)
    rig = load_rigs(rig_file)["good"]
    with EmulatedLab(rig_file, rigs=["good"]):
        pid_file = emulator_pid_file(rig)
        assert pid_file is not None and pid_file.exists(), "the emulator writes its pid for the liveness probe"
        pid = int(pid_file.read_text())
        os.environ["EMULATOR_PID"] = str(pid)
        try:
            run = run_inner(rig_file, "--rig", "good")
        finally:
            del os.environ["EMULATOR_PID"]
            assert process_state(pid) == "T", "the test really stopped the emulator"
            os.kill(pid, signal.SIGCONT)
    [test] = run.summary()["tests"]
    assert test["outcome"] == "infra_error", test
    assert test["instrument"] == "emulator" and "is stopped" in test["reason"], test
    assert not run.db.exists() or _no_faults(run.db), "a frozen lab is never filed against the box"
