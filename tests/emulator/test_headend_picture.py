"""The headend's test card moves where the scenarios look for motion, in every frame of its loop.

A zap can land anywhere in a channel's loop; if part of the loop moved too little for a motion
check, "moving video within 4 s" failed for a box that was fine (issue 13: the IGMP-storm scenario).
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2

from lab.emulator.headend import ChannelMap, channel_file
from lab.video import MotionDetector, Region

REGIONS = Path(__file__).resolve().parents[2] / "scenarios" / "images" / "STB-4K-X1" / "regions.json"


def test_every_frame_of_a_channel_loop_moves_in_the_live_motion_band():
    regions = json.loads(REGIONS.read_text())
    x0, y0, x1, y1 = regions["live_motion"]
    width, height = regions["size"]
    detector = MotionDetector(region=Region(x=x0, y=y0, width=x1 - x0, height=y1 - y0))
    path = channel_file(ChannelMap.default(1).channels[0])  # the scenarios' encoding (cached)
    moved = []
    with av.open(str(path)) as clip:
        for frame in clip.decode(video=0):
            hdmi = cv2.resize(frame.to_ndarray(format="bgr24"), (width, height))  # the box upscales
            moved.append(bool(detector.update(hdmi).details.get("this_frame")))
    assert len(moved) >= 100
    still = [i for i, m in enumerate(moved[1:], start=1) if not m]
    assert not still, f"frames {still} of {len(moved)} do not move in the live_motion band"
