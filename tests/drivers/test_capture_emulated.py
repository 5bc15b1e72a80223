"""Capture and IR drivers against a running ``stblab emulate``: power the box over its PDU (the
wire, plain HTTP), watch its HDMI stream, zap with the IR blaster, and take the instrument away."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from support import FAST_BOOT

from lab.drivers.capture import LOST, NO_SIGNAL, SIGNAL, Capture
from lab.drivers.ir import IrRemote
from lab.errors import InfraError
from lab.rig import Rig

testing = pytest.importorskip("lab.emulator.testing")


def pdu(rig: Rig, action: int) -> None:
    """Switch the rig's outlet through the NETIO-style JSON API (1 on, 0 off)."""
    body = json.dumps({"Outputs": [{"ID": rig.power.outlet, "Action": action}]}).encode()  # type: ignore[union-attr]
    req = urllib.request.Request(rig.power.url + "/netio.json", data=body, method="POST")  # type: ignore[union-attr]
    with urllib.request.urlopen(req, timeout=5) as resp:
        json.load(resp)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    rig_file = testing.write_rig_file(tmp_path_factory.mktemp("emu-d2"), ("stb-c",), boot=FAST_BOOT)
    with testing.EmulatedLab(rig_file) as running:
        yield running


def channel_on_screen(img: np.ndarray) -> int | None:
    """Which channel's logo the emulated box shows in the top-right corner (None: no logo)."""
    from lab.emulator.hdmi import logo_image
    from lab.emulator.screen import CHANNELS

    h, w = img.shape[:2]
    lw, lh = round(160 * w / 1280), round(100 * h / 720)
    patch = img[0 : round(170 * h / 720), round(1040 * w / 1280) :]
    scores = {
        ch.number: float(cv2.matchTemplate(patch, logo_image(ch, lw, lh), cv2.TM_CCOEFF_NORMED).max())
        for ch in CHANNELS
    }
    best = max(scores, key=lambda n: scores[n])
    return best if scores[best] > 0.9 else None


def next_channel(current: int) -> int:
    from lab.emulator.screen import CHANNELS

    numbers = sorted(c.number for c in CHANNELS)
    return numbers[(numbers.index(current) + 1) % len(numbers)]


def wait_for(pred: object, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_power_off_is_no_signal_not_black_and_power_on_brings_the_picture_back(lab: object) -> None:
    rig: Rig = lab.rigs["stb-c"]  # type: ignore[attr-defined]
    pdu(rig, 0)
    with Capture.from_rig(rig, lost_after=3.0) as cap:
        time.sleep(1.5)
        assert cap.signal == NO_SIGNAL and cap.latest() is None  # the encoder is up, the box is off
        pdu(rig, 1)
        first = cap.wait_for_signal(timeout=20)
        assert first.image.shape == (720, 1280, 3)
        n = sum(1 for _ in cap.frames(timeout=2.0))
        assert n >= 35  # ~25 fps from the emulated encoder, all delivered
        assert cap.signal == SIGNAL
        pdu(rig, 0)
        off_at = time.monotonic()
        cap.wait_for_no_signal(timeout=5)
        assert cap.signal == NO_SIGNAL  # not lost: the encoder still answers (503)
        last = cap.latest()
        assert last is not None and last.time < off_at + 0.5  # no (black) frames after power-off
        pdu(rig, 1)
        again = cap.wait_for_signal(timeout=20)
        assert again.seq > last.seq


def test_ir_zap_changes_the_channel_on_screen(lab: object) -> None:
    rig: Rig = lab.rigs["stb-c"]  # type: ignore[attr-defined]
    pdu(rig, 1)
    with Capture.from_rig(rig) as cap, IrRemote.from_rig(rig, inter_press_delay=0.2) as remote:
        cap.wait_for_signal(timeout=20)

        def channel() -> int | None:
            return channel_on_screen(cap.next_frame(timeout=5).image)

        assert wait_for(lambda: channel() is not None, 20), "the box never reached live TV"
        first = channel()
        assert first is not None
        remote.press("KEY_CHANNELUP")
        up = next_channel(first)
        assert wait_for(lambda: channel() == up, 5), f"channel {up} not on screen after CHANNELUP from {first}"
        lirc_url = rig.emulate.model_extra.get("lirc_url")  # type: ignore[union-attr]
        if lirc_url:
            with IrRemote(lirc_url, Path(rig.ir.remote), rig_name=rig.name) as lircd:  # type: ignore[union-attr]
                lircd.press_many(["KEY_5", "KEY_OK"])
            assert wait_for(lambda: channel() == 5, 5), "direct entry 5 OK over lircd did not tune channel 5"


def test_emulator_killed_is_infra_error_for_capture_and_ir(lab: object) -> None:
    rig: Rig = lab.rigs["stb-c"]  # type: ignore[attr-defined]
    pdu(rig, 1)
    with Capture.from_rig(rig, lost_after=1.0) as cap, IrRemote.from_rig(rig) as remote:
        cap.wait_for_signal(timeout=20)
        lab.kill()  # type: ignore[attr-defined]
        with pytest.raises(InfraError) as info:
            while True:
                cap.next_frame(timeout=10)
        assert (info.value.rig, info.value.instrument) == ("stb-c", "video")
        assert cap.signal == LOST
        with pytest.raises(InfraError) as info2:
            remote.press("KEY_OK")
        assert (info2.value.rig, info2.value.instrument) == ("stb-c", "ir")
