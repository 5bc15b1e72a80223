"""How the capture numbers live frames from their arrival times: jitter and late bursts are not
drops, missing frame slots are. Arrival times are fed in directly so every case is exact."""

from __future__ import annotations

import random

from lab.drivers.capture import Capture, _Grab, _SeqClock

FPS = 25.0
P = 1 / FPS


def feed(arrivals: list[float], fps: float | None = FPS) -> tuple[list[int], int]:
    """Numbers given to frames arriving at ``arrivals`` (seconds), and the drops counted."""
    cap = Capture("http://127.0.0.1:9/none", fps_hint=fps, ring_seconds=1000)
    clock = _SeqClock(fps)
    for t in arrivals:
        cap._hand_over(_Grab(t, b"\xff\xd8", None, 4, 4, clock, 0))  # noqa: SLF001
    cap._flush()  # noqa: SLF001
    return [e.seq for e in cap.ring.entries()], cap.dropped


def test_steady_stream_with_jitter_counts_no_drops() -> None:
    rng = random.Random(5)
    arrivals = [100 + k * P + rng.uniform(0, 0.7 * P) for k in range(500)]  # up to 28 ms late each
    seqs, dropped = feed(sorted(arrivals))
    assert dropped == 0 and seqs == list(range(500))


def test_stall_then_burst_is_late_not_lost() -> None:
    arrivals = [100 + k * P for k in range(20)]
    # the stream stalls for ~300 ms: frames 20..27 then arrive back to back; 28.. on time again
    arrivals += [100 + 27 * P + 0.01 + i * 0.001 for i in range(8)]
    arrivals += [100 + k * P for k in range(28, 60)]
    seqs, dropped = feed(arrivals)
    assert dropped == 0 and seqs == list(range(60))


def test_missing_slots_are_counted_where_they_are() -> None:
    keep = [k for k in range(60) if k not in (10, 30, 31, 32)]
    rng = random.Random(9)
    arrivals = [100 + k * P + rng.uniform(0, 0.3 * P) for k in keep]
    seqs, dropped = feed(arrivals)
    assert dropped == 4
    assert seqs == keep  # the gaps in seq sit where the source lost frames


def test_without_a_frame_rate_frames_are_numbered_in_order() -> None:
    seqs, dropped = feed([100 + k * 0.1 for k in range(10)] + [200.0], fps=None)
    assert seqs == list(range(11)) and dropped == 0


def test_a_source_faster_than_its_hint_is_never_held_back() -> None:
    arrivals = [100 + k / 60 for k in range(120)]  # 60 fps while the rig file says 25
    cap = Capture("http://127.0.0.1:9/none", fps_hint=FPS)
    clock = _SeqClock(FPS)
    published = []
    for t in arrivals:
        cap._hand_over(_Grab(t, b"\xff\xd8", None, 4, 4, clock, 0))  # noqa: SLF001
        published.append(len(cap.ring))
    # at most ~3 frame periods of the hint are ever waiting for publication
    assert all(len_now >= i + 1 - 8 for i, len_now in enumerate(published))
    assert cap.dropped == 0
