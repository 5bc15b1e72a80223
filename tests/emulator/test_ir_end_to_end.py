"""End to end on a running ``stblab emulate``: IR keys sent over the wire change the channel, and the
HDMI stream read by ``cv2.VideoCapture`` shows it. Plain sockets, urllib and OpenCV only.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlparse

import cv2
import numpy as np
from emu_helpers import pdu
from support import eventually

from lab.emulator.hdmi import logo_image
from lab.emulator.screen import CHANNELS
from lab.lircd import load_remote
from lab.rig import Rig

_REFS: dict[tuple[int, int], dict[int, np.ndarray]] = {}


def channel_on_screen(img: np.ndarray) -> int | None:
    """Which channel's logo is in the top-right corner (None when no logo matches well)."""
    h, w = img.shape[:2]
    lw, lh = round(160 * w / 1280), round(100 * h / 720)
    refs = _REFS.setdefault((w, h), {ch.number: logo_image(ch, lw, lh) for ch in CHANNELS})
    corner = img[0 : round(170 * h / 720), round(1040 * w / 1280) :]
    scores = {n: float(cv2.matchTemplate(corner, ref, cv2.TM_CCOEFF_NORMED).max()) for n, ref in refs.items()}
    best = max(scores, key=lambda n: scores[n])
    return best if scores[best] > 0.9 else None


def snapshot(rig: Rig) -> np.ndarray | None:
    url = rig.video.url.replace("/stream.mjpg", "/snapshot.jpg")  # type: ignore[union-attr]
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            data = resp.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 503:
            return None
        raise
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def open_stream(rig: Rig) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(
        rig.video.url,  # type: ignore[union-attr]
        cv2.CAP_FFMPEG,
        [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 3000],
    )
    assert cap.isOpened()
    return cap


def channel_now(rig: Rig) -> int | None:
    """The channel logo in the picture now: the first frame of a new connection to the stream.

    A new connection starts at the live picture. An open one does not: a reader slower than 25 fps
    (matching ten logos per 720p frame on a busy host) falls behind, and the socket buffers hold
    seconds of old frames, so what it reads after a zap is from before it.
    """
    cap = open_stream(rig)
    try:
        ok, frame = cap.read()
        assert ok, "HDMI stream gave no frame while the box is on"
        return channel_on_screen(frame)
    finally:
        cap.release()


def wait_channel(rig: Rig, want: int | None = None, timeout: float = 8.0) -> int:
    """Look at the picture until a channel logo (``want``, or any) is on screen; returns its number."""
    end = time.monotonic() + timeout
    seen = None
    while time.monotonic() < end:
        seen = channel_now(rig)
        if seen is not None and (want is None or seen == want):
            return seen
    raise AssertionError(f"channel {want or 'logo'} not on screen after {timeout}s (last seen: {seen})")


def itach_press(rig: Rig, key: str) -> None:
    remote = load_remote(rig.ir.remote)  # type: ignore[union-attr]
    url = rig.ir.url if rig.ir.url.startswith("itach://") else rig.emulate.model_extra["itach_url"]  # type: ignore[union-attr]
    p = urlparse(url)
    periods = [max(1, round(t * 38000 / 1e6)) for t in remote.encode(key, trailing_gap=True)]
    with socket.create_connection((p.hostname, p.port), timeout=5) as s:
        s.sendall(f"sendir,{p.path.strip('/')},42,38000,1,1,{','.join(map(str, periods))}\r".encode())
        reply = b""
        while not reply.endswith(b"\r"):
            reply += s.recv(1024)
    assert reply == f"completeir,{p.path.strip('/')},42\r".encode()


def lircd_press(rig: Rig, key: str) -> None:
    url = rig.ir.url if rig.ir.url.startswith("lirc://") else rig.emulate.model_extra["lirc_url"]  # type: ignore[union-attr]
    p = urlparse(url)
    with socket.create_connection((p.hostname, p.port), timeout=5) as s:
        s.sendall(f"SEND_ONCE STBLAB_RC1 {key}\n".encode())
        reply = b""
        while not reply.endswith(b"END\n"):
            reply += s.recv(1024)
    assert reply == f"BEGIN\nSEND_ONCE STBLAB_RC1 {key}\nSUCCESS\nEND\n".encode()


def test_ir_keys_zap_and_the_hdmi_picture_follows(rig: Rig) -> None:
    pdu(rig, 0)
    assert snapshot(rig) is None  # powered off: no signal at all
    pdu(rig, 1)
    eventually(lambda: snapshot(rig) is not None, timeout=10, interval=0.1, what="an HDMI signal after power-on")
    cap = open_stream(rig)
    try:
        ok, frame = cap.read()
        assert ok and frame.shape == (720, 1280, 3)
        first = wait_channel(rig, timeout=15)  # booted into live TV
        numbers = sorted(c.number for c in CHANNELS)
        up = numbers[(numbers.index(first) + 1) % len(numbers)]
        itach_press(rig, "KEY_CHANNELUP")
        assert wait_channel(rig, up) == up
        target = 5 if up != 5 else 6
        lircd_press(rig, f"KEY_{target}")
        lircd_press(rig, "KEY_OK")
        assert wait_channel(rig, target) == target
        # Garbled timings on the iTach: the box ignores them, the channel stays.
        p = urlparse(rig.ir.url if rig.ir.url.startswith("itach://") else rig.emulate.model_extra["itach_url"])  # type: ignore[union-attr]
        with socket.create_connection((p.hostname, p.port), timeout=5) as s:
            s.sendall(b"sendir,1:1,7,38000,1,1," + b",".join([b"40", b"17"] * 30) + b"\r")
            assert s.recv(64) == b"completeir,1:1,7\r"
        time.sleep(0.3)  # a window for a zap that must not happen (asserting an absence, not waiting)
        assert channel_now(rig) == target
        cap.release()
        cap = open_stream(rig)  # at the live picture: what it reads after power off is not a backlog
        assert cap.read()[0]
        pdu(rig, 0)
        end = time.monotonic() + 3
        while cap.read()[0]:
            assert time.monotonic() < end, "stream still running after power off"
    finally:
        cap.release()
    assert snapshot(rig) is None
