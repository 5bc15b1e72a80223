"""Seeded defects that need a sequence (fixtures for `stblab explore`), seen over the wire: keys within
a window over the lircd socket, power cuts during boot over the PDU's HTTP API, the console over TCP
and the picture over /snapshot.jpg."""

from __future__ import annotations

import time

import numpy as np
import pytest
from emu_helpers import FAST_BOOT, Lircd, RawConsole, emulate_section, pdu, snapshot

from lab.emulator.testing import EmulatedLab, write_rig_file

CATALOGUE = {
    "2.9.0": [
        {"kind": "key_window", "keys": ["KEY_CHANNELUP", "KEY_CHANNELUP", "KEY_INFO"], "within": 1.5},
        {"kind": "key_window", "keys": ["KEY_EPG", "KEY_BACK"], "within": 0.5, "effect": "panic"},
        {"kind": "power_storm", "cuts": 2},
    ]
}


@pytest.fixture(scope="module")
def slab(tmp_path_factory):
    d = tmp_path_factory.mktemp("seq")
    rig_file = write_rig_file(d, ("seq",), firmware="2.9.0", defects=CATALOGUE, boot=FAST_BOOT)
    with EmulatedLab(rig_file) as lab:
        yield lab


def _boot(lab) -> RawConsole:
    rig = lab.rigs["seq"]
    pdu(rig, 0)
    pdu(rig, 1)
    con = RawConsole(rig.serial.url)
    con.login(30)
    return con


def _moving(rig, rows=slice(150, 430)) -> float:
    a = snapshot(rig)[rows].astype(np.int16)
    time.sleep(0.3)
    b = snapshot(rig)[rows].astype(np.int16)
    return float(np.abs(a - b).mean())


def _wait_moving(rig, timeout: float = 5.0) -> float:
    deadline = time.monotonic() + timeout
    level = _moving(rig)
    while level < 1.0 and time.monotonic() < deadline:
        level = _moving(rig)
    return level


def test_keys_within_the_window_freeze_the_picture_and_slow_keys_do_not(slab) -> None:
    rig = slab.rigs["seq"]
    con = _boot(slab)
    ir = Lircd(emulate_section(slab.rig_file, "seq")["lirc_url"])
    for key in ("KEY_CHANNELUP", "KEY_CHANNELUP", "KEY_INFO"):  # at a human's pace: 0.9 s apart
        ir.send_once(key)
        time.sleep(0.9)
    assert _wait_moving(rig) > 1.0, "slow keys must leave the picture moving"
    for key in ("KEY_CHANNELUP", "KEY_CHANNELUP", "KEY_INFO"):  # fast: within the window
        ir.send_once(key)
        time.sleep(0.1)
    time.sleep(1.0)  # let the new channel's tuning end
    assert _moving(rig) < 0.5, "the picture must stand still after the fast sequence"
    assert "tuned=" in con.run("tune 1"), "the box still answers: the picture is stuck"
    ir.close()
    con.close()


def test_a_fast_pair_of_keys_panics_the_kernel(slab) -> None:
    con = _boot(slab)
    ir = Lircd(emulate_section(slab.rig_file, "seq")["lirc_url"])
    ir.send_once("KEY_EPG")
    ir.send_once("KEY_BACK")
    con.expect(r"Kernel panic - not syncing", timeout=10)
    ir.close()
    con.close()


def test_power_cuts_during_boot_leave_the_next_boot_black_until_a_clean_boot(slab) -> None:
    rig = slab.rigs["seq"]
    con = _boot(slab)
    assert _wait_moving(rig) > 1.0
    for _ in range(2):  # two cuts, each while the box boots
        pdu(rig, 0)
        pdu(rig, 1)
        con.expect(r"U-Boot|Starting kernel", timeout=10)
        time.sleep(0.2)
    pdu(rig, 0)
    pdu(rig, 1)
    con.login(30)
    time.sleep(1.0)
    assert snapshot(rig).max() < 5, "HDMI output must stay black after the storm"
    pdu(rig, 0)
    pdu(rig, 1)
    con.login(30)
    assert _wait_moving(rig) > 1.0, "a boot without a cut before it brings the picture back"
    con.close()
