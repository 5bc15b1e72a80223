"""Power off silences the console at once, even for output already on its way to the UART."""

from __future__ import annotations

import threading
import time

from lab.emulator.box import Box
from lab.emulator.config import load_emulated
from lab.emulator.testing import write_rig_file


def test_output_racing_power_off_never_reaches_the_console(tmp_path):
    [(rig, settings)] = load_emulated(write_rig_file(tmp_path))
    box = Box(rig, settings)
    written: list[bytes] = []
    box.hub.write = written.append  # type: ignore[method-assign]
    box.powered = True  # as if booting; no boot thread needed here
    try:
        with box._out_lock:  # another thread is mid-write
            writers = [
                threading.Thread(target=box.console, args=("late shell output\n",)),
                threading.Thread(target=box.kmsg, args=("late kernel message",)),
            ]
            for t in writers:
                t.start()
            time.sleep(0.2)  # both have checked the power and wait for the UART
            box.set_power(False)
        for t in writers:
            t.join(5)
        assert written == []
    finally:
        box.close()


def test_poweroff_halt_stops_the_iptv_receiver_and_standby(tmp_path):
    [(rig, settings)] = load_emulated(write_rig_file(tmp_path))
    box = Box(rig, settings)
    box.hub.write = lambda data: None  # type: ignore[method-assign]
    stopped = threading.Event()

    class _Iptv:
        def stop(self) -> None:
            stopped.set()

        def close(self) -> None:
            pass

    box.iptv = _Iptv()
    box.powered, box.phase, box.standby = True, "running", True
    try:
        box.request_poweroff()
        assert stopped.wait(3), "the halted box still receives its IPTV channel"
        assert box.phase == "off" and not box.powered and not box.standby
    finally:
        box.close()
