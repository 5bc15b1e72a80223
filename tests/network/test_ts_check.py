"""TS checker: a clean CBR channel passes TR 101 290 checks; damaged streams are caught by kind."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from lab.emulator.headend import ChannelMap, channel_file
from lab.network import ts
from lab.network.ts_check import TsChecker, check_bytes, check_file

from .conftest import TEST_SETTINGS


@pytest.fixture(scope="module")
def clean_ts(channel_cache: Path, cmap: ChannelMap) -> bytes:
    return channel_file(cmap.channels[0], channel_cache, TEST_SETTINGS).read_bytes()


def _packets(data: bytes) -> list[bytearray]:
    return [bytearray(data[i : i + ts.PACKET]) for i in range(0, len(data), ts.PACKET)]


def test_headend_channel_is_clean_cbr_with_pcr_within_40ms(clean_ts: bytes, channel_cache: Path) -> None:
    report = check_file(next(channel_cache.glob("ch001-*.ts")))
    assert report.ok, report.summary()
    assert report.pcr_interval_max_ms is not None and report.pcr_interval_max_ms <= 40
    assert report.pcr_accuracy_max_ns is not None and report.pcr_accuracy_max_ns <= 500
    assert report.pat_interval_max_s is not None and report.pat_interval_max_s <= 0.5
    assert report.video_pid is not None
    assert report.duration == pytest.approx(TEST_SETTINGS.seconds, abs=0.2)


def test_dropped_packets_are_continuity_errors(clean_ts: bytes) -> None:
    pkts = _packets(clean_ts)
    rng = random.Random(3)
    video = [i for i, p in enumerate(pkts) if ts.TsPacket.parse(bytes(p)).pid == 0x100]
    drop = set(rng.sample(video[10:-10], 25))
    damaged = b"".join(p for i, p in enumerate(pkts) if i not in drop)
    report = check_bytes(damaged)
    assert not report
    # two adjacent drops are one gap: at most 25 errors, at least the non-adjacent ones
    assert 15 <= report.errors["cc_error"] <= 25
    assert {e.pid for e in report.events if e.kind == "cc_error"} == {0x100}


def test_corrupted_sync_bytes_and_sync_loss(clean_ts: bytes) -> None:
    pkts = _packets(clean_ts)
    pkts[200][0] = 0x00
    for k in (500, 501, 502):
        pkts[k][0] = 0x12
    report = check_bytes(b"".join(pkts))
    assert report.errors["sync_byte_error"] >= 2
    assert report.errors["ts_sync_loss"] == 1


def test_missing_pat_and_pcr_are_reported(clean_ts: bytes) -> None:
    pkts = _packets(clean_ts)
    # remove every PAT in the second second: PAT absent for > 0.5 s
    n = len(pkts)
    no_pat = [p for i, p in enumerate(pkts) if not (ts.TsPacket.parse(bytes(p)).pid == 0 and n // 4 < i < n // 2)]
    assert check_bytes(b"".join(no_pat), bitrate=TEST_SETTINGS.muxrate).errors["pat_error"] >= 1
    # strip PCRs from a stretch of packets: PCR interval beyond 40 ms
    stripped = []
    for i, p in enumerate(pkts):
        info = ts.TsPacket.parse(bytes(p))
        if info.pcr is not None and n // 3 < i < n // 3 + 100:
            p = bytearray(p)
            p[5] &= ~0x10  # clear the PCR flag (the field bytes become stuffing-like)
        stripped.append(p)
    report = check_bytes(b"".join(stripped), bitrate=TEST_SETTINGS.muxrate)
    assert report.errors["pcr_repetition_error"] >= 1


def test_checker_accepts_any_chunking(clean_ts: bytes) -> None:
    whole = check_bytes(clean_ts)
    checker = TsChecker(bitrate=whole.bitrate)
    rng = random.Random(1)
    i = 0
    while i < len(clean_ts):
        step = rng.randrange(1, 3000)
        checker.feed(clean_ts[i : i + step])
        i += step
    chunked = checker.finish()
    assert chunked.packets == whole.packets and chunked.ok == whole.ok
    # garbage in front (a capture started mid-packet) costs no packets after resync
    report = check_bytes(b"\x01\x02\x47\x00" + clean_ts)
    assert report.packets == whole.packets
