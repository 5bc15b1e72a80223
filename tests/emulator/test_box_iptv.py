"""Live TV from the emulated headend: the box joins the channel's multicast group when it tunes,
decodes it, and shows its own "no signal" screen when the stream stops (loopback, no namespace)."""

from __future__ import annotations

import json
import random
import time

import pytest
import yaml
from emu_helpers import FAST_BOOT, RawConsole
from support import eventually

from lab.emulator.testing import EmulatedLab, write_rig_file

headend = pytest.importorskip("lab.emulator.headend")


def _wait_tuner(con: RawConsole, state: str, timeout: float = 15.0) -> dict:
    end = time.monotonic() + timeout
    while True:
        tuner = json.loads(con.run("diag --json"))["tuner"]
        if tuner.get("state") == state or time.monotonic() > end:
            return tuner
        time.sleep(0.3)


def test_iptv_channel_plays_and_a_dead_stream_gives_no_signal(tmp_path):
    group = f"239.{random.randrange(100, 200)}.{random.randrange(256)}.0"
    cmap = headend.ChannelMap.default(count=2, base=group, port=random.randrange(20000, 30000))
    map_file = tmp_path / "channels.yaml"
    map_file.write_text(yaml.safe_dump({"channels": [c.model_dump() for c in cmap.channels]}))
    rig_file = write_rig_file(
        tmp_path,
        boot=FAST_BOOT,
        power_on_at_start=True,
        iptv={"channel_map": str(map_file), "namespace": None, "interface_ip": "127.0.0.1"},
    )
    with (
        headend.Headend(cmap, interface_ip="127.0.0.1") as head,  # encoded channels cached across runs
        EmulatedLab(rig_file) as lab,
    ):
        con = RawConsole(lab.rigs["stb-a"].serial.url)
        con.wake()
        con.login(20)
        con.run("tune 1")
        tuner = _wait_tuner(con, "playing")
        assert tuner["state"] == "playing" and tuner["source"] == "iptv", tuner
        tuner = eventually(
            lambda: (t := json.loads(con.run("diag --json"))["tuner"])["frames"] > 0 and t["datagrams"] > 0 and t,
            timeout=10,
            interval=0.3,
            what="decoded frames and datagrams",
        )
        assert tuner["frames"] > 0 and tuner["datagrams"] > 0
        head.pause(1)
        assert _wait_tuner(con, "no_signal")["state"] == "no_signal"
        head.resume(1)
        assert _wait_tuner(con, "playing")["state"] == "playing"
        con.close()
