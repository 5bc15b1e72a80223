"""The emulated box presents IPTV pictures at the stream's frame rate, not as they come off the network.

Pictures decoded in a burst (datagrams held up by the network or by a busy host) play out one a
frame interval apart; a new channel's first picture shows at once; too much lag skips ahead.
"""

from __future__ import annotations

import time

import numpy as np
from support import eventually

from lab.emulator.headend import ChannelMap
from lab.emulator.iptv import IptvReceiver


def _pictures(n: int) -> list[np.ndarray]:
    return [np.full((4, 4, 3), i, np.uint8) for i in range(n)]


def _shown(rx: IptvReceiver) -> int:
    frame = rx.latest_frame()
    return -1 if frame is None else int(frame[0, 0, 0])


def test_a_burst_of_pictures_plays_out_one_frame_interval_apart():
    rx = IptvReceiver(ChannelMap.default(1))
    burst = _pictures(10)
    t0 = time.monotonic()
    for i, img in enumerate(burst):
        rx._present(img, first=i == 0, interval=0.04)
    assert _shown(rx) == 0, "the first picture of a channel shows at once, the rest wait their turn"
    seen = [0]
    eventually(lambda: seen.append(_shown(rx)) or seen[-1] == 9, timeout=5, what="the last picture of the burst")
    assert time.monotonic() - t0 >= 9 * 0.04  # never faster than the stream's rate
    assert seen == sorted(seen), "pictures in order"


def test_more_lag_than_max_lag_skips_ahead_to_the_newest_picture():
    rx = IptvReceiver(ChannelMap.default(1), max_lag=0.2)
    for i, img in enumerate(_pictures(20)):  # 20 x 40 ms = 0.8 s of pictures at once
        rx._present(img, first=i == 0, interval=0.04)
    # 0 at once; 1..5 queued (up to 0.2 s of lag); 6 skips ahead and shows at once, and so on
    assert _shown(rx) in range(6, 20), "the picture caught up instead of lagging 0.8 s behind"
