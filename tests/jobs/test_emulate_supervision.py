"""`stblab emulate`: one rig's emulator dying leaves the other rigs' emulators running, and says which died."""

from __future__ import annotations

import os
import signal

from lab.device_health import emulator_pid_file, process_state
from lab.emulated_lab import answers
from lab.emulator.testing import EmulatedLab

from .conftest import wait_until, write_rigs


def test_one_emulator_dying_does_not_stop_the_others(tmp_path):
    rig_file = write_rigs(tmp_path / "lab")
    with EmulatedLab(rig_file, rigs=["good", "bad"]) as lab:
        pids = {}
        for name, rig in lab.rigs.items():
            path = emulator_pid_file(rig)
            assert path is not None and wait_until(path.exists, 10)
            pids[name] = int(path.read_text())
        os.kill(pids["bad"], signal.SIGKILL)
        assert wait_until(lambda: any("died bad" in line for line in lab.output), 15), lab.output
        assert any("signal SIGKILL" in line for line in lab.output if "died bad" in line)
        assert any("still running: good" in line for line in lab.stderr), lab.stderr
        assert process_state(pids["good"]) not in (None, "Z"), "the other rig's emulator keeps running"
        assert answers(lab.rigs["good"]) and not answers(lab.rigs["bad"])
        assert lab.proc is not None and lab.proc.poll() is None, "stblab emulate itself keeps running"


def test_the_emulator_and_the_probe_name_the_same_pid_file():
    from lab.device_health import PID_FILE as PROBED
    from lab.emulator.process import PID_FILE as WRITTEN

    assert PROBED == WRITTEN
