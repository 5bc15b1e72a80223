"""Infra errors: the lab failing is an *error* naming rig and instrument, marks the rig unhealthy,
and is never filed against the box."""

from __future__ import annotations

import os

import pytest

from lab.emulator.testing import EmulatedLab

from .conftest import write_two_rigs

# The emulator (its whole process group) is killed while the test waits in expect().
KILL_TEST = """
import os, signal, threading

def test_expect_while_the_emulator_dies(shell, console):
    pgid = int(os.environ["EMULATOR_PGID"])
    threading.Timer(1.0, os.killpg, (pgid, signal.SIGKILL)).start()
    console.expect("this never appears", timeout=20)

def test_later_test_on_the_same_rig(stb):
    stb.run("true")
"""


@pytest.mark.slow
def test_emulator_killed_mid_expect_is_an_error_and_marks_the_rig_unhealthy(pytester, run_inner, tmp_path):
    rig_file = write_two_rigs(tmp_path / "lab")
    pytester.makepyfile(test_kill=KILL_TEST)
    with EmulatedLab(rig_file, rigs=["good"]) as lab:
        assert lab.proc is not None
        os.environ["EMULATOR_PGID"] = str(os.getpgid(lab.proc.pid))
        try:
            run = run_inner(rig_file, "--rig", "good")
        finally:
            del os.environ["EMULATOR_PGID"]
    run.result.assert_outcomes(errors=2)
    out = run.output
    assert "rig good, serial" in out, out[-3000:]
    entries = run.summary()["entries"]
    assert [e["kind"] for e in entries] == ["infra_error", "infra_error"]
    assert entries[0]["instrument"] == "serial" and entries[0]["rig"] == "good"
    assert "unhealthy since" in entries[1]["reason"] and "test_expect_while_the_emulator_dies" in entries[1]["reason"]
    assert (run.run_dir / "good" / "test_expect_while_the_emulator_dies" / "console-excerpt.txt").exists()
    assert not (run.run_dir / "good" / "test_later_test_on_the_same_rig").exists(), "a refused test has no evidence"
    # JUnit says error (not failure); nothing was filed against the box.
    junit = run.junit()
    assert len(list(junit.iter("error"))) == 2 and not list(junit.iter("failure"))
    assert not run.db.exists() or os.path.getsize(run.db) == 0 or _no_faults(run.db)
    assert run.summary()["outcome"] == "infra_error"


def _no_faults(db) -> bool:
    from lab.rma import RmaStore

    with RmaStore(db) as store:
        return not store.faults()


def test_marker_skips_rigs_lacking_model_or_feature(pytester, run_inner, tmp_path):
    rig_file = write_two_rigs(tmp_path / "lab")
    pytester.makepyfile(
        test_m="""
import pytest

@pytest.mark.stb(features=["warp-drive"])
def test_needs_feature(stb):
    pass

@pytest.mark.stb(model="STB-OTHER")
def test_needs_model(stb):
    pass
"""
    )
    run = run_inner(rig_file, "--rig", "good", "-rs")
    run.result.assert_outcomes(skipped=2)
    assert "lacks feature(s): warp-drive" in run.output
    assert "needs model STB-OTHER" in run.output


def test_more_xdist_workers_than_rigs_is_a_clear_usage_error(pytester, run_inner, tmp_path):
    rig_file = write_two_rigs(tmp_path / "lab")
    pytester.makepyfile(test_x="def test_x(rig):\n    pass\n")
    run = run_inner(rig_file, "-n", "5")
    assert run.result.ret == 4
    assert "5 xdist workers but only 4 rig(s)" in run.result.stderr.str()


def test_each_xdist_worker_takes_its_own_rig(pytester, run_inner, tmp_path):
    rig_file = write_two_rigs(tmp_path / "lab")
    out = tmp_path / "seen"
    out.mkdir()
    pytester.makepyfile(
        test_w=f"""
import os, pathlib, pytest

@pytest.mark.parametrize("i", range(6))
def test_w(rig, i):
    worker = os.environ["PYTEST_XDIST_WORKER"]
    pathlib.Path({str(out)!r}, f"{{worker}}-{{rig.name}}").touch()
"""
    )
    run = run_inner(rig_file, "-n", "2", "--rig", "model=STB-4K-X1")
    run.result.assert_outcomes(passed=6)
    seen = {p.name for p in out.iterdir()}
    workers = {s.split("-", 1)[0]: s.split("-", 1)[1] for s in seen}
    assert len(seen) == len(workers) == 2, seen  # one rig per worker, never shared
    assert sorted(workers.values()) == ["bad", "good"]


def test_bad_rig_file_is_a_usage_error_before_any_test(pytester, run_inner, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rigs:\n  - name: x\n    model: M\n    power: {url: ftp://nope, outlet: 1}\n")
    pytester.makepyfile(test_x="def test_x(rig):\n    pass\n")
    run = run_inner(bad)
    assert run.result.ret == 4
    assert "key 'power.url'" in run.result.stderr.str()
    too_many = run_inner(write_two_rigs(tmp_path / "lab"), "--reproduce", "11")
    assert too_many.result.ret == 4 and "--reproduce 11: give 0 to 10 reruns" in too_many.result.stderr.str()
    unknown = run_inner(write_two_rigs(tmp_path / "lab"), "--rig", "model=STB-NOPE")
    assert unknown.result.ret == 4
    assert "no rig matches 'model=STB-NOPE' (have: good, bad, bad2, brick)" in unknown.result.stderr.str()


RIG_TEST = "def test_which(rig):\n    print('DRIVING', rig.name)\n"


def test_a_rig_held_by_another_session_is_never_shared(pytester, run_inner, tmp_path):
    from lab.plugin.session import RigLock
    from lab.rig import load_rigs

    rig_file = write_two_rigs(tmp_path / "lab")
    pytester.makepyfile(test_which=RIG_TEST)
    held = RigLock(load_rigs(rig_file)["good"])
    assert held.acquire()
    try:
        busy = run_inner(rig_file, "--rig", "good")
        busy.result.assert_outcomes(errors=1)
        assert "every selected rig is in use by another session: good (pid" in busy.output
        assert busy.summary()["entries"][0]["kind"] == "infra_error"
        other = run_inner(rig_file, "--rig", "model=STB-4K-X1", "-s")
        other.result.assert_outcomes(passed=1)
        assert "DRIVING bad" in other.output  # the free rig of the selection
    finally:
        held.release()
