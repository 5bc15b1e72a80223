"""Third-party app hogs on the emulated box (``hog``), seen over the console socket: ps, /proc/loadavg,
/proc/meminfo, /proc/sys/fs/file-nr and /proc/PID/fd show them, a CPU hog slows the zap, a crash loop
prints segfault and restart lines, the OOM killer takes a too-large hog, and ``hog stop`` or a reboot
clears them."""

from __future__ import annotations

import re
import time

import pytest
from emu_helpers import FAST_BOOT, boot_to_shell, power_off

from lab.emulator.testing import EmulatedLab, write_rig_file


@pytest.fixture(scope="module")
def hlab(tmp_path_factory):
    rig_file = write_rig_file(tmp_path_factory.mktemp("hog"), ("hog",), boot=FAST_BOOT)
    with EmulatedLab(rig_file) as lab:
        yield lab


def _avail(con) -> int:
    return int(re.search(r"MemAvailable:\s+(\d+)", con.run("cat /proc/meminfo")).group(1))


def _hog_pid(con, flag: str) -> int:
    rows = [ln for ln in con.run("ps").splitlines() if "app_hog" in ln and flag in ln]
    assert len(rows) == 1, con.run("ps")
    return int(rows[0].split()[0])


def test_hogs_show_in_ps_proc_and_stop_clears_them(hlab) -> None:
    power_off(hlab.rigs["hog"])  # every test from a cold boot
    con = boot_to_shell(hlab.rigs["hog"])
    assert "app_hog" not in con.run("ps")
    assert con.run("cat /proc/loadavg").split()[3].startswith("1/")
    avail0 = _avail(con)
    files0 = int(con.run("cat /proc/sys/fs/file-nr").split()[0])

    t0 = time.monotonic()
    con.run("tune 2")
    idle = time.monotonic() - t0
    load_before = float(con.run("cat /proc/loadavg").split()[0])
    assert "hog: started cpu" in con.run("hog cpu 4")
    assert re.search(r"\d+ app\s+\d+ R\s+/opt/apps/bin/app_hog --cpu 4", con.run("ps"))
    assert con.run("cat /proc/loadavg").split()[3].startswith("5/")
    t0 = time.monotonic()
    assert "tuned=3" in con.run("tune 3")
    busy = time.monotonic() - t0
    assert busy >= 1.0, (idle, busy)  # 4 busy threads x 0.25 s of UI work each (idle: one round trip)

    assert float(con.run("cat /proc/loadavg").split()[0]) > load_before  # the 1-min average climbs
    assert "load average: " in con.run("uptime")
    con.run("hog mem 200")
    assert avail0 - _avail(con) == 200 * 1024
    con.run("hog fds 300")
    assert int(con.run("cat /proc/sys/fs/file-nr").split()[0]) == files0 + 300
    pid = _hog_pid(con, "--fds")
    assert con.run(f"ls /proc/{pid}/fd | wc -l").strip() == "300"
    assert "Too many open files" in con.run("hog fds 5000")
    assert con.run(f"ls /proc/{_hog_pid(con, '--fds')}/fd | wc -l").strip() == "1024"

    out = con.run("hog stop")
    assert "cpu" in out and "mem" in out and "fds" in out
    assert "app_hog" not in con.run("ps")
    assert _avail(con) == avail0
    assert con.run("cat /proc/loadavg").split()[3].startswith("1/")
    assert int(con.run("cat /proc/sys/fs/file-nr").split()[0]) == files0
    assert "none running" in con.run("hog stop")
    assert "usage: hog" in con.run("hog disk 3")
    con.close()


def test_a_crash_loop_prints_segfaults_and_restarts_and_the_oom_killer_takes_a_huge_hog(hlab) -> None:
    power_off(hlab.rigs["hog"])  # every test from a cold boot
    con = boot_to_shell(hlab.rigs["hog"])
    con.run("hog crashloop 0.4")
    first = con.expect(r"app_hog\[(\d+)\]: segfault at 0 ip", 5)
    pid = first.group(1)
    con.expect(rf"app-supervisor: app_hog \(pid {pid}\) killed by signal 11, restart 1 as (\d+)", 5)
    con.expect(r"restart 2 as \d+", 5)
    con.run("hog stop")
    con.read(1.0)
    assert b"segfault" not in con.read(0.8), "stopped crash loop still crashing"

    con.send("hog mem 900\r")
    con.expect(r"Out of memory: Killed process (\d+) \(app_hog\)", 5)
    con.expect(r"# $", 5)
    ps = con.run("ps")
    assert "stb_app" in ps and "app_hog" not in ps, ps  # the UI survives, the hog is gone
    con.close()


def test_a_reboot_clears_the_hogs(hlab) -> None:
    power_off(hlab.rigs["hog"])  # every test from a cold boot
    con = boot_to_shell(hlab.rigs["hog"])
    con.run("hog cpu 2; hog mem 100")
    assert "app_hog" in con.run("ps")
    con.send("reboot\r")
    con.login(30)
    assert "app_hog" not in con.run("ps")
    assert con.run("cat /proc/loadavg").split()[3].startswith("1/")
    assert "none running" in con.run("hog stop")
    con.close()
