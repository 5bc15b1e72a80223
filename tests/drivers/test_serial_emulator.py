"""SerialConsole against the emulated STB: bootloader, login, run, deaths, garbage, RFC 2217, a killed emulator."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from lab.drivers.power import PowerSwitch
from lab.drivers.serial import ConsoleDeath, SerialConsole
from lab.errors import InfraError

# pyserial's RFC 2217 client still calls Thread.setDaemon/setName
pytestmark = pytest.mark.filterwarnings("ignore:set(Daemon|Name)\\(\\) is deprecated:DeprecationWarning")


def test_power_on_bootloader_login_and_run(emulated: Any, tmp_path: Path) -> None:
    rig = emulated.rigs["stb-a"]
    pdu = PowerSwitch.from_rig(rig)
    pdu.off()
    with SerialConsole.from_rig(rig, run_dir=tmp_path) as con:
        pdu.on()
        con.interrupt_bootloader(timeout=15)
        env = con.bootloader_run("printenv")
        assert "bootcmd=" in env.output and env.exit_code == 0
        assert con.bootloader_run("frobnicate").exit_code == 127
        assert "reset" in con.bootloader_run("help").output  # "reset - Perform RESET" is no death string
        con.sendline("boot")
        con.login(timeout=20)
        fw = con.run("fw version")
        assert re.fullmatch(r"version=2\.0\.0 build=\S+ slot=[AB]\n", fw.output)
        assert con.run("false").exit_code == 1
        missing = con.run("no-such-tool --help")
        assert missing.exit_code == 127 and "not found" in missing.output
        uptime = con.run("cat /proc/uptime")
        assert float(uptime.output.split()[0]) > 0
        dmesg = con.run("dmesg")  # dmesg's own kernel lines are kept
        assert "Booting Linux" in dmesg.output or "Linux version" in dmesg.output
        # the kernel keeps printing meanwhile; outputs stay exact, line after line
        for i in range(20):
            assert con.run(f"echo line {i}").output == f"line {i}\n"
        assert con.deaths == []  # a normal boot and a chatty kernel raise no false alarm
    log = (tmp_path / "stb-a.console.log").read_text(errors="replace")
    assert "Hit any key to stop autoboot" in log and "login:" in log  # the whole boot is in the log


def test_kernel_panic_at_boot_is_a_device_fault_with_excerpt(emulated: Any, tmp_path: Path) -> None:
    rig = emulated.rigs["stb-x"]
    pdu = PowerSwitch.from_rig(rig)
    pdu.off()
    with SerialConsole.from_rig(rig, run_dir=tmp_path) as con:
        pdu.on()
        with pytest.raises(ConsoleDeath) as err:
            con.login(timeout=30)
        assert err.value.symptom == "kernel-panic"
        assert "Attempted to kill init" in err.value.excerpt
        assert err.value.rig == "stb-x"
    pdu.off()


def test_binary_garbage_is_survived_and_kept(emulated: Any, tmp_path: Path) -> None:
    rig = emulated.rigs["stb-a"]
    with SerialConsole.from_rig(rig, run_dir=tmp_path) as con:
        PowerSwitch.from_rig(rig).on()
        con.login(timeout=30)
        garbage = bytes(range(128, 256)) + b"\x00\x1b[2J\xc3\x28\xf0\x28\x8c\x28"
        con.write(garbage + b"\n")
        assert con.run("echo still alive").output == "still alive\n"
        assert con.run("fw version").exit_code == 0
    raw = (tmp_path / "stb-a.console.log").read_bytes()
    # what the box echoed of it (its line editor drops bytes it can't use) is in the log as sent
    assert b"(((\r\n" in raw


def test_rfc2217_console(emulated: Any) -> None:
    rig = emulated.rigs["stb-a"]
    PowerSwitch.from_rig(rig).on()
    with SerialConsole(rig.emulate.model_extra["rfc2217_url"], rig_name="stb-a") as con:
        con.login(timeout=30)
        assert con.run("echo over rfc2217").output == "over rfc2217\n"


def test_emulator_killed_during_expect_is_infra_error(tmp_path: Path) -> None:
    import threading

    from lab.emulator.testing import EmulatedLab, write_rig_file

    with EmulatedLab(write_rig_file(tmp_path)) as lab:
        rig = lab.rigs["stb-a"]
        rfc = SerialConsole(rig.emulate.model_extra["rfc2217_url"], rig_name="stb-a").open()
        rfc_error: list[BaseException] = []

        def wait_rfc() -> None:
            try:
                rfc.expect("login: ", timeout=10)
            except BaseException as exc:  # noqa: BLE001 - checked below
                rfc_error.append(exc)

        with SerialConsole.from_rig(rig, run_dir=tmp_path) as con:
            con.sendline("")  # box is off: silent, but the port is open
            t0 = time.monotonic()
            waiter = threading.Thread(target=wait_rfc)
            waiter.start()
            threading.Timer(0.5, lab.kill).start()
            with pytest.raises(InfraError) as err:
                con.expect("login: ", timeout=10)
            assert time.monotonic() - t0 < 10
            assert err.value.rig == "stb-a" and err.value.instrument == "serial"
            waiter.join(12)
        rfc.close()
        assert "console connection lost" in (tmp_path / "stb-a.console.log").read_text()
        # the same over RFC 2217 (pyserial's own reader thread notices the drop)
        assert len(rfc_error) == 1 and isinstance(rfc_error[0], InfraError), rfc_error
        assert time.monotonic() - t0 < 12


def test_kernel_panic_defect_raises_from_the_waiting_call(emulated: Any, tmp_path: Path) -> None:
    from lab.drivers.ir import IrRemote

    rig = emulated.rigs["stb-p"]
    pdu = PowerSwitch.from_rig(rig)
    with SerialConsole.from_rig(rig, run_dir=tmp_path) as con:
        pdu.on()
        con.login(timeout=30)
        remote = IrRemote.from_rig(rig, inter_press_delay=0.05)
        for key in ("KEY_MENU", "KEY_9", "KEY_9", "KEY_OK"):
            remote.press(key)
        with pytest.raises(ConsoleDeath) as err:
            con.expect("this never comes", timeout=15)
        assert err.value.symptom == "kernel-oops"
        assert "stb_osd_menu_select" in err.value.excerpt  # the call trace is in the evidence
        assert "Kernel panic - not syncing" in err.value.excerpt
        # the watchdog reset that follows is the same incident: waiting for the reboot works
        con.expect("U-Boot", timeout=30)
        con.login(timeout=30)
        assert con.run("true")
        assert "watchdog-reset" in [d.symptom for d in con.deaths]
    pdu.off()
