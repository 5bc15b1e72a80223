"""PowerSwitch against the emulated PDU: the outlet really powers the emulated box."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab.drivers.power import PowerSwitch
from lab.drivers.serial import SerialConsole


def test_on_off_cycle_status_drive_the_box(emulated: Any, tmp_path: Path) -> None:
    rig = emulated.rigs["stb-a"]
    pdu = PowerSwitch.from_rig(rig)
    assert pdu.info()["NumOutputs"] >= rig.power.outlet
    with SerialConsole.from_rig(rig, run_dir=tmp_path) as con:
        pdu.off()
        assert pdu.status() is False
        off = pdu.reading()
        assert not off.on and off.current_ma == 0
        pdu.on()
        assert pdu.status() is True
        on = pdu.reading()
        assert on.on and on.current_ma and on.current_ma > 0 and on.load_w and on.load_w > 0
        con.expect("U-Boot", timeout=10)  # power on boots the box
        con.login(timeout=30)
        mark = con.mark()
        pdu.cycle(off_seconds=0.3)
        assert pdu.status() is True
        con.expect("U-Boot", timeout=10)  # and a cycle reboots it
        assert "U-Boot" in con.since(mark)
        mark = con.mark()
        pdu.cycle()  # the PDU's own short-off (its Delay)
        con.expect("U-Boot", timeout=15)
        pdu.off()
        assert pdu.status() is False
