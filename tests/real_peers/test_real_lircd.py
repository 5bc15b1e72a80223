"""The IR driver and the lircd.conf reader against real lircd 0.10 (its ``file`` driver writes
what it would blink as ``pulse``/``space`` lines): the remotes lircd reads are the remotes we read,
the timings it sends for a key are the ones we encode, and what the driver sends through lircd
decodes back to the key, its repeats and a held key."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from peer_programs import LircdPeer, need, start_lircd

from lab.drivers.ir import IrRemote, LircdBlaster
from lab.lircd import Remote, load_remotes

ROOT = Path(__file__).resolve().parents[2]
REMOTE_FILES = sorted((ROOT / "tests" / "data" / "remotes").glob("*.lircd.conf")) + sorted(
    Path("/work/shared/remotes").glob("*.lircd.conf")
)


def _close(a: int, b: int, remote: Remote) -> bool:
    tol = max(remote.aeps, abs(b) * remote.eps / 100, 2)
    return abs(a - b) <= tol


@pytest.fixture
def lircd_for(tmp_path: Path) -> Iterator:
    need("lircd")
    started: list[LircdPeer] = []

    def start(conf: Path) -> LircdPeer:
        peer = start_lircd(tmp_path / f"lircd{len(started)}", conf)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.stop()


def _wait_sent(peer: LircdPeer, n: int, timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        timings = peer.timings()
        if len(timings) >= n or time.monotonic() > deadline:
            return timings
        time.sleep(0.02)


@pytest.mark.parametrize("conf", REMOTE_FILES, ids=lambda p: p.name)
def test_lircd_reads_the_remotes_we_read_and_sends_what_we_encode(conf: Path, lircd_for) -> None:
    ours = load_remotes(conf)
    peer = lircd_for(conf)
    blaster = LircdBlaster(str(peer.socket))
    try:
        assert blaster.command("LIST") == [r.name for r in ours]
        for remote in ours:
            listed = blaster.command(f"LIST {remote.name}")
            # a key written twice in one remote is listed twice by lircd; we keep it once
            assert list(dict.fromkeys(line.split()[-1] for line in listed)) == remote.keys
            if remote.codes:  # lircd prints each key's code as 16 hex digits
                for line in listed:
                    code, key = line.split()
                    assert int(code, 16) == remote.codes[key][0], (remote.name, key)
            for key in remote.keys[:6]:
                before = len(peer.timings())
                blaster.command(f"SEND_ONCE {remote.name} {key}")
                # lircd flips an RC-5/RC-6 toggle bit on every SEND_ONCE (starting set): either value
                toggles = (0, 1) if remote.toggle_bit_mask else (None,)
                wants = [remote.encode(key, toggle=t) for t in toggles]
                got = _wait_sent(peer, before + min(map(len, wants)))[before:]
                same = [
                    len(got) >= len(w) and all(_close(a, b, remote) for a, b in zip(got[: len(w)], w, strict=True))
                    for w in wants
                ]
                assert any(same), (remote.name, key, got[:12], wants[0][:12])
                assert remote.decode(got) == key
    finally:
        blaster.close()


def test_the_ir_driver_presses_repeats_and_holds_through_lircd(lircd_for, tmp_path: Path) -> None:
    conf = Path("/work/shared/remotes/Apple_TV.lircd.conf")
    if not conf.exists():
        conf = ROOT / "tests" / "data" / "remotes" / "Apple_TV.lircd.conf"
    peer = lircd_for(conf)
    remote = load_remotes(conf)[0]
    ir = IrRemote(peer.tcp_url, conf, rig_name="real", inter_press_delay=0)
    try:
        ir.press("KEY_OK")
        ir.press("KEY_UP", repeat=2)
        ir.press_many(["KEY_LEFT", "KEY_RIGHT"])
        want = sum(len(remote.encode(k, repeat=r)) for k, r in [("KEY_OK", 0), ("KEY_UP", 2), ("KEY_LEFT", 0)])
        timings = _wait_sent(peer, want + len(remote.encode("KEY_RIGHT")))
        pressed = remote.decode_all(timings)
        # Apple_TV has no repeat code: lircd repeats the whole frame within the remote's gap
        expected = [("KEY_OK", 0), ("KEY_UP", 2), ("KEY_LEFT", 0), ("KEY_RIGHT", 0)]
        assert [(d.key, d.repeats) for d in pressed] == expected
        before = len(peer.timings())
        ir.hold("KEY_DOWN", 0.5)
        held = remote.decode_all(_wait_sent(peer, before + 200, timeout=2.0)[before:])
        assert [d.key for d in held] == ["KEY_DOWN"], "a hold is one press"
        assert held[0].repeats >= 3, f"a 0.5 s hold sent only {held[0].repeats} repeat frames"
    finally:
        ir.close()
