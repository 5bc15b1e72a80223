"""Channel zapping: each IR press shows the next channel's banner and moving video within a bound."""

from __future__ import annotations

import statistics

import pytest

ZAPS = 8
BANNER_BOUND_S = 3.0
MOTION_BOUND_S = 3.0


@pytest.mark.stb(features=["ir", "hdmi"])
def test_channel_zapping(shell, stb, remote, tv, record_measurement):
    """Zap up through the line-up; every zap must give the right banner and a moving picture."""
    start = tv.channels[0]
    stb.run(f"tune {start}").check()
    tv.expect_banner(start, timeout=BANNER_BOUND_S + 2)
    channel = start
    zap_times = []
    for _ in range(ZAPS):
        expected = tv.next_channel(channel)
        remote.press("KEY_CHANNELUP")
        banner = tv.expect_banner(expected, timeout=BANNER_BOUND_S)
        zap_times.append(banner.seconds)
        tv.expect_motion(timeout=MOTION_BOUND_S)
        channel = expected
    record_measurement("zap_seconds_median", f"{statistics.median(zap_times):.3f}")
    record_measurement("zap_seconds_max", f"{max(zap_times):.3f}")
    # The box must still be healthy afterwards (a leak or a crash shows on the console).
    stb.run("cat /proc/meminfo").check()
