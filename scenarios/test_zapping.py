"""Channel zapping: each IR press shows the next channel's banner and moving video within a bound."""

from __future__ import annotations

import random
import re
import statistics
import time

import pytest

from lab.errors import DeviceFault

ZAPS = 8
BANNER_BOUND_S = 3.0
MOTION_BOUND_S = 3.0
LEAK_BOUND_KB = 32 * 1024


@pytest.mark.stb(features=["ir", "hdmi"])
def test_channel_zapping(shell, stb, remote, tv, record_measurement, seed):
    """Zap up through the line-up from a seeded start channel (reruns start from the same one);
    every zap must give the right banner and a moving picture."""
    mem_before = available_kb(stb)
    start = random.Random(seed).choice(tv.channels)
    record_measurement("start_channel", start)
    stb.run(f"tune {start}").check()
    tv.expect_banner(start, timeout=BANNER_BOUND_S + 2)
    channel = start
    zap_times = []
    for _ in range(ZAPS):
        expected = tv.next_channel(channel)
        pressed = time.monotonic()
        remote.press("KEY_CHANNELUP")
        banner = tv.expect_banner(expected, timeout=BANNER_BOUND_S, since=pressed)
        zap_times.append(banner.seconds)
        tv.expect_motion(timeout=MOTION_BOUND_S)
        channel = expected
    record_measurement("zap_seconds_median", f"{statistics.median(zap_times):.3f}")
    record_measurement("zap_seconds_max", f"{max(zap_times):.3f}")
    # The box must still be healthy afterwards (a crash shows on the console) and not leak.
    leaked = mem_before - available_kb(stb)
    record_measurement("zap_mem_drop_kb", leaked)
    if leaked > LEAK_BOUND_KB:
        raise DeviceFault(
            f"MemAvailable dropped {leaked} kB over {ZAPS} zaps (bound {LEAK_BOUND_KB} kB)", symptom="memory-leak"
        )


def available_kb(stb) -> int:
    """MemAvailable from /proc/meminfo, in kB."""
    out = stb.run("cat /proc/meminfo").check().output
    m = re.search(r"MemAvailable:\s+(\d+)", out)
    if not m:
        raise DeviceFault("/proc/meminfo has no MemAvailable", symptom="bad-meminfo")
    return int(m.group(1))
