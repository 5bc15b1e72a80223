"""PtsClock: frame time from the stream's PTS, the start-up burst held and back-dated, drops from PTS gaps."""

from __future__ import annotations

import pytest

from lab.drivers.stream_clock import PtsClock

P = 0.04


def _feed(clock: PtsClock, frames: list[tuple[float, float]]) -> list:
    out = []
    for arrival, pts in frames:
        out += clock.feed(arrival, pts, None)
    return out + clock.flush()


def test_start_up_burst_is_back_dated_and_differences_are_pts_differences() -> None:
    # 25 frames buffered by the demuxer's probe arrive within 50 ms, then frames come on schedule
    burst = [(10.0 + i * 0.002, 100.0 + i * P) for i in range(25)]
    steady = [(10.06 + (i - 24) * P + 0.003, 100.0 + i * P) for i in range(25, 60)]
    out = _feed(PtsClock(25), burst + steady)
    assert [s.seq for s in out] == list(range(60))
    assert all(s.time <= s.arrival + 1e-9 for s in out)  # never stamped after it arrived
    assert all(s.time - out[0].time == pytest.approx(s.seq * P, abs=1e-6) for s in out)
    assert 0 <= out[25].arrival - out[25].time <= 0.02  # steady frames: stamped close to their arrival


def test_pts_gaps_are_drops_and_jitter_is_not() -> None:
    frames = [(1.0 + i * P + (0.015 if i % 3 else 0.0), i * P) for i in range(40) if not 20 <= i < 23]
    out = _feed(PtsClock(25), frames)
    assert sum(s.missed for s in out) == 3 and out[-1].seq == 39


def test_a_new_timeline_re_anchors_without_drops() -> None:
    clock = PtsClock(25)
    first = _feed(clock, [(1.0 + i * P, 50.0 + i * P) for i in range(40)])
    after = [s for a, p in [(3.0 + i * P, 0.5 + i * P) for i in range(10)] for s in clock.feed(a, p, None)]
    assert clock.reanchors == 1 and sum(s.missed for s in after) == 0
    assert after[0].time > first[-1].time and after[0].seq == first[-1].seq + 1


def test_a_source_without_timestamps_is_flagged() -> None:
    clock = PtsClock(25)
    out = _feed(clock, [(1.0 + i * P, 0.0) for i in range(10)])
    assert clock.usable is False and [s.time for s in out] == [1.0 + i * P for i in range(len(out))]
