"""The plugin against emulated rigs: pass, device fault (failed, filed, evidence), JUnit properties.

Each test runs a real pytest session in a subprocess (pytester) with ``--rigs`` pointing at the
module's emulated lab: console, power, SSH over their real protocols.
"""

from __future__ import annotations

import pytest

from lab.rma import RmaStore

GOOD_TEST = """
def test_firmware(shell, stb):
    assert stb.firmware_version() == "2.0.0"
    assert stb.run("echo hello").output.strip() == "hello"
"""

# Zapping with `tune` on the defective firmware leaks memory until the OOM killer fires: the
# console's death string must surface as a DeviceFault from the call that is waiting.
LEAK_TEST = """
def test_zap_until_it_breaks(shell, stb):
    for i in range(30):
        stb.run(f"tune {1 + i % 8}")
"""


@pytest.fixture
def good_file(pytester):
    return pytester.makepyfile(test_good=GOOD_TEST)


@pytest.fixture
def leak_file(pytester):
    return pytester.makepyfile(test_leak=LEAK_TEST)


@pytest.mark.slow
def test_defective_firmware_fails_with_a_filed_device_fault_and_evidence(two_rigs, run_inner, leak_file):
    first = run_inner(two_rigs, "--rig", "bad")
    first.result.assert_outcomes(failed=1)
    assert "Out of memory" in first.output
    entries = first.summary()["entries"]
    assert [e["kind"] for e in entries] == ["device_fault"]
    assert entries[0]["fault_new"] is True and entries[0]["fault_id"] is not None
    props = first.properties("test_zap_until_it_breaks")
    assert props["firmware_version"] == "2.3.0" and props["stblab_outcome"] == "device_fault"
    # The fault is in the RMA database, with the occurrence's rig and firmware.
    with RmaStore(first.db) as store:
        faults = store.faults()
        assert len(faults) == 1
        occ = store.occurrences()
        assert len(occ) == 1
    # Allure got the evidence of the failure: console excerpt and step log with timings.
    [result] = first.allure_results()
    assert result["status"] == "failed"
    names = {a["name"] for a in result.get("attachments", [])}
    assert {"console log excerpt", "step log with timings"} <= names
    excerpt = (first.run_dir / "bad" / "test_zap_until_it_breaks" / "console-excerpt.txt").read_text()
    assert "Out of memory" in excerpt
    # The same bug again is a known fault, not a new one.
    second = run_inner(two_rigs, "--rig", "bad", db=first.db)
    second.result.assert_outcomes(failed=1)
    again = second.summary()["entries"][0]
    assert again["fault_new"] is False and again["fault_id"] == entries[0]["fault_id"]
    assert "known faults:" in second.output


# A failed video check: the deciding frame and a clip of the last seconds must reach Allure.
VIDEO_TEST = """
from lab.video import is_black
from lab.video.result import VideoCheckFailed

def test_expects_black_but_sees_live_tv(shell, stb, capture):
    stb.run("tune 2").check()
    frame = None
    for frame in capture.frames(timeout=3):
        pass
    result = is_black(frame)
    if not result:
        raise VideoCheckFailed("screen is not black", result, symptom="not-black")
"""


@pytest.mark.slow
def test_good_rig_passes_and_a_video_failure_carries_frame_and_clip(two_rigs, run_inner, pytester, good_file):
    """One session on the good rig: a passing test with the rig's JUnit properties, and a failed
    video check whose deciding frame and clip reach Allure."""
    pytester.makepyfile(test_video=VIDEO_TEST)
    run = run_inner(two_rigs, "--rig", "good", "--no-file-faults")
    run.result.assert_outcomes(passed=1, failed=1)
    props = run.properties("test_firmware")
    assert props["rig"] == "good"
    assert props["model"] == "STB-4K-X1"
    assert props["firmware_version"] == "2.0.0"
    assert props["device_serial"] == "SN-GOOD"
    assert "stblab_outcome" not in props
    assert (run.run_dir / "good" / "console.log").read_bytes(), "console log must be written to the run folder"
    [result] = [r for r in run.allure_results() if r["status"] == "failed"]
    attachments = {a["name"]: a for a in result.get("attachments", [])}
    assert {"deciding frame", "last seconds (clip)", "console log excerpt", "step log with timings"} <= set(attachments)
    frame_file = run.run_dir / "allure-results" / attachments["deciding frame"]["source"]
    import cv2

    image = cv2.imread(str(frame_file))
    # the annotated picture of the check: the full frame (plus lab.video's caption strip, if any)
    assert image is not None and image.shape[1] == 1280 and image.shape[0] >= 720
    clip = cv2.VideoCapture(str(run.run_dir / "good" / "test_expects_black_but_sees_live_tv" / "clip.avi"))
    ok, first = clip.read()
    assert ok and first.shape[:2] == (720, 1280), "the clip must hold real frames"
    assert not run.db.exists(), "--no-file-faults: the device fault is reported but not filed"
    steps = (run.run_dir / "good" / "test_expects_black_but_sees_live_tv" / "steps.txt").read_text()
    assert "serial.run('tune 2'" in steps and "stb.to('shell') ok in" in steps
    assert "save_clip" not in steps, "evidence collection is not part of the test's step log"


@pytest.mark.slow
def test_reproduce_reruns_a_fault_and_records_k_of_n(two_rigs, run_inner, leak_file):
    """Reruns alternate between the rig and a free twin of its model running the same firmware
    (``good`` runs other firmware and is passed over)."""
    run = run_inner(two_rigs, "--rig", "bad", "--reproduce", "2")
    run.result.assert_outcomes(failed=1)  # reruns are measurements, not extra test results
    [entry] = run.summary()["entries"]
    assert entry["reproduction"] == "2 of 2 (reproducible) [bad 1/1, bad2 1/1]"
    assert "reproduced 2 of 2" in run.output
    assert "twin skipped: good runs firmware 2.0.0, not 2.3.0" in run.output
    with RmaStore(run.db) as store:
        fault = store.fault(entry["fault_id"])
    assert fault is not None
    text = repr(fault)
    assert "reproducible" in text


@pytest.mark.slow
def test_a_box_that_does_not_boot_fails_in_setup_and_is_filed(two_rigs, run_inner, pytester):
    """A panic while booting (in the `shell` fixture) is the box's fault: failed, not error, and filed;
    ``--reproduce`` counts the same panic in a rerun's setup as a hit, on the brick itself (its
    firmware is unknown, so no twin can be matched to it).

    The brick's emulator is not running: ``--emulate auto`` starts it for the session and stops it
    at the end."""
    import socket

    from lab.rig import load_rigs

    pytester.makepyfile(test_boot="def test_needs_a_shell(shell):\n    pass\n")
    run = run_inner(two_rigs, "--rig", "brick", "--boot-timeout", "20", "--emulate", "auto", "--reproduce", "2")
    run.result.assert_outcomes(failed=1)
    port = int(load_rigs(two_rigs)["brick"].serial.url.rsplit(":", 1)[1])
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the session's emulator must be stopped at the end"
    [entry] = run.summary()["entries"]
    assert entry["kind"] == "device_fault" and entry["fault_new"] is True
    assert "kernel-panic" in entry["reason"] or "panic" in entry["reason"].lower()
    assert entry["reproduction"] == "2 of 2 (reproducible) [brick 2/2]", run.output[-3000:]
    assert len(list(run.junit().iter("failure"))) == 1 and not list(run.junit().iter("error"))


PRIME_TEST = """
import time

def test_a_wait_until_sshd_died(shell, stb):
    # the firmware's sshd segfaults 3 s after boot: wait for the console line of it, and forget it
    deadline = time.monotonic() + 30
    while not stb.console.clear_deaths():
        assert time.monotonic() < deadline, "sshd did not segfault on the console within 30 s"
        time.sleep(0.1)  # the polling interval of a bounded wait
"""


@pytest.mark.slow
def test_agree_scenario_blames_a_dead_sshd_on_the_box_not_the_lab(run_inner, pytester, tmp_path):
    """scenarios/test_agree.py: SSH refused while the console answers is the box's fault (sshd-dead),
    a failure, and the rig stays usable; it used to end as an infra error ("rig is unhealthy")."""
    from support import FAST_BOOT

    from lab.emulator.testing import write_rig_file

    from .conftest import REPO

    sshd = {"2.4.0": [{"kind": "sshd_dies", "after_seconds": 3}]}
    rig_file = write_rig_file(tmp_path / "lab", ("sshd",), firmware="2.4.0", defects=sshd, boot=FAST_BOOT)
    pytester.makepyfile(
        test_a_prime=PRIME_TEST,
        test_b_agree=(REPO / "scenarios" / "test_agree.py").read_text(),
        ssh_check=(REPO / "scenarios" / "ssh_check.py").read_text(),
    )
    pytester.makepyfile(test_c_after="def test_c_rig_still_usable(stb):\n    assert stb.run('true').exit_code == 0\n")
    run = run_inner(rig_file, "--emulate", "auto", "--no-file-faults")
    run.result.assert_outcomes(passed=2, failed=1)
    [entry] = run.summary()["entries"]
    assert entry["kind"] == "device_fault" and entry["reason"].startswith("sshd-dead"), entry


FLAKY_TEST = """
import pathlib
from lab.errors import DeviceFault

def test_fails_once(rig, tmp_path_factory):
    flag = pathlib.Path(str(tmp_path_factory.getbasetemp())).parent / "failed-once"
    if not flag.exists():
        flag.touch()
        raise DeviceFault("went wrong once", symptom="flaky")
"""


def test_reruns_that_pass_do_not_turn_the_allure_result_green(run_inner, pytester, tmp_path):
    """The first pass failed: JUnit, the summary and Allure all say failed, with 0 of 2 reproduced."""
    from .conftest import write_two_rigs

    pytester.makepyfile(test_flaky=FLAKY_TEST)
    run = run_inner(write_two_rigs(tmp_path / "lab"), "--rig", "good", "--reproduce", "2")
    run.result.assert_outcomes(failed=1)
    [entry] = run.summary()["entries"]
    assert entry["reproduction"].startswith("0 of 2"), entry
    [result] = run.allure_results()
    assert result["status"] == "failed", result.get("statusDetails")
    assert "went wrong once" in result["statusDetails"]["message"]


SILENT_CRASH_TEST = """
import time

def test_a_presses_the_crashing_keys(shell, remote):
    for key in ("KEY_MENU", "KEY_9", "KEY_9", "KEY_OK"):
        remote.press(key)
    time.sleep(3)  # nothing waits on the console meanwhile

def test_b_next_test(shell, stb):
    assert stb.run("true").exit_code == 0
"""


@pytest.mark.slow
def test_a_crash_nobody_waited_for_fails_the_test_it_happened_in(run_inner, pytester, tmp_path):
    """The panic is raised at the end of the test that caused it (filed under it), and the next test
    starts on a clean box; it used to fail the next test's setup instead."""
    from support import FAST_BOOT

    from lab.emulator.testing import write_rig_file

    panic = {"2.2.0": [{"kind": "kernel_panic", "key_sequence": ["KEY_MENU", "KEY_9", "KEY_9", "KEY_OK"]}]}
    rig_file = write_rig_file(tmp_path / "lab", ("oops",), firmware="2.2.0", defects=panic, boot=FAST_BOOT)
    pytester.makepyfile(test_crash=SILENT_CRASH_TEST)
    run = run_inner(rig_file, "--emulate", "auto", "--no-file-faults")
    run.result.assert_outcomes(passed=1, failed=1)
    [entry] = run.summary()["entries"]
    assert entry["nodeid"].endswith("test_a_presses_the_crashing_keys"), entry
    assert entry["kind"] == "device_fault" and entry["reason"].startswith("kernel-oops"), entry


ALWAYS_TEST = """
from lab.errors import DeviceFault

def test_always(rig):
    raise DeviceFault("fails every time", symptom="always")
"""


def test_reproduce_measures_without_filing_too(run_inner, pytester, tmp_path):
    """A lab engineer reproducing locally with --no-file-faults still gets k of n (it was 'no reruns')."""
    from .conftest import write_two_rigs

    pytester.makepyfile(test_always=ALWAYS_TEST)
    run = run_inner(write_two_rigs(tmp_path / "lab"), "--rig", "good", "--reproduce", "2", "--no-file-faults")
    run.result.assert_outcomes(failed=1)
    [entry] = run.summary()["entries"]
    assert entry["reproduction"] == "2 of 2 (reproducible) [good 2/2]", entry
    assert entry["fault_id"] is None and not run.db.exists()
