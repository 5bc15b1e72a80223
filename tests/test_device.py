"""lab.device.Stb against an emulated rig: states, logged transitions, console vs SSH, health."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from support import FAST_BOOT, eventually

from lab.device import Stb
from lab.device_health import BAD, GOOD, UNKNOWN, RigHealth
from lab.drivers.console_death import ConsoleDeath
from lab.emulator.testing import EmulatedLab, write_rig_file
from lab.errors import InfraError, TestError
from lab.rig import Rig, load_rigs
from lab.steps import STEPS, StepRecord


@pytest.fixture(scope="module")
def lab(emulated_lab: Callable[..., EmulatedLab]) -> tuple[EmulatedLab, Rig]:
    """One emulated box for this module's tests (from the session's lab factory, tests/conftest.py)."""
    emu = emulated_lab(("box",), key="test_device")
    return emu, emu.rigs["box"]


def test_states_are_logged_steps_and_the_console_log_spans_them(lab, tmp_path):
    _, rig = lab
    seen: list[StepRecord] = []
    undo = STEPS.subscribe(seen.append)
    try:
        with Stb(rig, run_dir=tmp_path) as stb:
            stb.to("off")
            assert stb.state == "off"
            stb.to("shell")
            assert stb.state == "shell" and stb.health.status("box") == GOOD
            stb.to("bootloader")
            assert "U-Boot" in stb.console.bootloader_run("version").output
            stb.to("shell")
            assert stb.run("echo ok").output.strip() == "ok"
            assert stb.firmware_version() == "2.0.0"
            assert stb.serial_number() == "SN-BOX"
            log = stb.console_log_path
    finally:
        undo()
    transitions = [r for r in seen if r.instrument == "stb" and r.action == "to"]
    assert [r.args for r in transitions] == ["'off'", "'shell'", "'bootloader'", "'shell'"]
    assert all(r.outcome == "ok" and r.duration >= 0 for r in transitions)
    text = log.read_text(errors="replace")
    assert text.count("Hit any key to stop autoboot") >= 2, "one log across power cycles"
    assert "login:" in text


def test_reboot_restarts_uptime_and_console_agrees_with_ssh(lab, tmp_path):
    _, rig = lab
    with Stb(rig, run_dir=tmp_path) as stb:
        stb.to("shell")
        before = eventually(lambda: (up := stb.uptime()) >= 1.0 and up, timeout=15, interval=0.2, what="1 s of uptime")
        took = stb.reboot()
        assert stb.state == "shell"
        assert stb.uptime() < before + took
        assert stb.firmware_version(via="ssh") == stb.firmware_version(via="console")
        assert stb.diag(via="ssh")["serial"] == stb.serial_number()
        assert abs(stb.uptime(via="ssh") - stb.uptime()) < 2.0


def test_unknown_state_is_a_test_error(lab, tmp_path):
    _, rig = lab
    with Stb(rig, run_dir=tmp_path) as stb, pytest.raises(TestError, match="unknown state 'standby'"):
        stb.to("standby")


def test_dead_instrument_marks_the_rig_bad_and_later_calls_fail_fast(tmp_path):
    rig_file = write_rig_file(tmp_path / "lab", ("gone",), boot=FAST_BOOT)
    health = RigHealth()
    with EmulatedLab(rig_file) as emu:
        rig = load_rigs(rig_file)["gone"]
        stb = Stb(rig, run_dir=tmp_path / "run", health=health)
        stb.current_test = "test_one"
        stb.to("shell")
        emu.kill()
        t0 = time.monotonic()
        with pytest.raises(InfraError) as first:
            stb.run("sleep 5", timeout=20)
        assert time.monotonic() - t0 < 20
        assert first.value.rig == "gone"
        assert first.value.instrument in ("serial", "power")
        assert health.status("gone") == BAD
        t1 = time.monotonic()
        with pytest.raises(InfraError, match="unhealthy since test_one") as later:
            stb.to("shell")
        assert time.monotonic() - t1 < 0.5, "a bad rig is not retried"
        assert later.value.instrument == first.value.instrument
        stb.close()


def test_health_keeps_the_first_reason_and_absolve_resets_it():
    health = RigHealth()
    assert health.status("r") == UNKNOWN
    health.mark_good("r")
    assert health.status("r") == GOOD
    health.mark_bad("r", InfraError("no answer\nmore", rig="r", instrument="power"), test="t1")
    health.mark_bad("r", InfraError("later consequence", rig="r", instrument="serial"), test="t2")
    rec = health.record("r")
    assert rec is not None and rec.reason == "no answer" and rec.instrument == "power" and rec.test == "t1"
    health.mark_good("r")
    assert health.status("r") == BAD, "good never overrides bad"
    with pytest.raises(InfraError, match=r"\[rig r, power\] rig is unhealthy since t1: no answer"):
        health.check("r")
    health.absolve("r")
    health.check("r")
    assert health.status("r") == UNKNOWN


def test_a_boot_through_the_bootloader_is_a_new_crash_incident(tmp_path):
    """A panic in a boot started from the bootloader is raised as a panic, not folded into the
    previous boot's crash (which left login to time out and filed a different fault)."""
    rig_file = write_rig_file(
        tmp_path / "lab",
        ("brick",),
        firmware="2.9.0",
        defects={"2.9.0": [{"kind": "boot_fail"}]},
        boot=FAST_BOOT,
    )
    with EmulatedLab(rig_file):
        rig = load_rigs(rig_file)["brick"]
        with Stb(rig, run_dir=tmp_path / "run", boot_timeout=8) as stb:
            with pytest.raises(ConsoleDeath):
                stb.to("shell")
            stb.to("bootloader")
            with pytest.raises(ConsoleDeath):
                stb.to("shell")


def test_a_dirty_box_does_not_hand_the_failed_tests_crash_to_the_next_transition(tmp_path):
    """After a failed test (mark_dirty) a crash nobody was waiting for is the failed test's: going
    to the bootloader next must not raise it."""
    panic = {"2.2.0": [{"kind": "kernel_panic", "key_sequence": ["KEY_MENU", "KEY_9", "KEY_9", "KEY_OK"]}]}
    rig_file = write_rig_file(tmp_path / "lab", ("oops",), firmware="2.2.0", defects=panic, boot=FAST_BOOT)
    with EmulatedLab(rig_file):
        rig = load_rigs(rig_file)["oops"]
        with Stb(rig, run_dir=tmp_path / "run") as stb:
            stb.to("shell")
            for key in ("KEY_MENU", "KEY_9", "KEY_9", "KEY_OK"):
                stb.remote.press(key)
            eventually(lambda: stb.console.deaths, timeout=10, interval=0.1, what="the kernel panic on the console")
            stb.mark_dirty()
            stb.to("bootloader")
            assert "U-Boot" in stb.console.bootloader_run("version").output
