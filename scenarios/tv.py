"""What a subscriber sees: page objects for the lab's boxes, on lab.video's waiters.

``LiveTv`` is a :class:`lab.video.Screen` (a page object built from one frame): its properties
say which channel banner the frame shows. ``Tv`` is what scenarios use: it knows a model's
assets (``scenarios/images/<model>/``: banner and logo images, regions in ``regions.json``) and
waits with the library's waiters only -- timeouts in frame time, a wait that runs out raises
:class:`lab.video.VideoCheckFailed` (a DeviceFault) with the deciding frame, a lost capture an
InfraError. No polling here.

Example::

    tv = Tv(capture, model="STB-4K-X1", rig="stb-a")
    pressed = time.monotonic()
    remote.press("KEY_CHANNELUP")
    zap = tv.expect_banner(2, timeout=3, since=pressed)   # zap.seconds: press to banner
    tv.expect_motion(timeout=3)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.errors import TestError
from lab.video import (
    MatchResult,
    Screen,
    is_no_signal,
    wait_for_black,
    wait_for_match,
    wait_for_motion,
    wait_for_picture,
    wait_until,
)
from lab.video.result import CheckResult
from lab.video.screen import ScreenAssets

IMAGES = Path(__file__).resolve().parent / "images"


@dataclass(frozen=True)
class Waited:
    """A satisfied wait: the deciding result and how long it took in frame time (s)."""

    result: CheckResult
    seconds: float
    frames: int


class LiveTv(Screen):
    """Live TV: ``channel`` is the number whose banner the frame shows (None without a banner)."""

    @property
    def channel(self) -> int | None:
        for number in self.assets.data["channels"] if self.assets else ():
            if self.banner(int(number)):
                return int(number)
        return None

    def banner(self, channel: int) -> MatchResult:
        """The match of channel ``channel``'s banner in the banner region."""
        return self.match_image(f"banner-{channel}.png", "banner")

    @property
    def is_visible(self) -> bool:
        return self.channel is not None


class Tv:
    """Screen expectations for one rig's HDMI capture (see the module docstring)."""

    def __init__(self, capture: Any, *, model: str, rig: str | None = None) -> None:
        self.capture = capture
        self.rig = rig
        self.assets = ScreenAssets.load(IMAGES / model)
        if "channels" not in self.assets.data:
            raise TestError(f"{self.assets.folder / 'regions.json'}: no 'channels' key")
        self.channels = sorted(int(n) for n in self.assets.data["channels"])
        self.dir = self.assets.folder

    def next_channel(self, number: int, step: int = 1) -> int:
        """The channel CHANNELUP (``step=1``) or CHANNELDOWN (``-1``) leads to, with wrap-around."""
        i = self.channels.index(number) if number in self.channels else 0
        return self.channels[(i + step) % len(self.channels)]

    def screen(self) -> LiveTv:
        """The live-TV page object of the newest frame."""
        return LiveTv(self.capture.next_frame(), assets=self.assets)

    def _waited(self, result: CheckResult, since: float | None) -> Waited:
        if since is not None and result.time is not None:
            seconds = result.time - since
        else:  # from the first frame of the wait to the deciding one
            seconds = float(result.details.get("elapsed", 0.0))
        return Waited(result, seconds, int(result.details.get("frames", 0)))

    def expect_banner(self, channel: int, timeout: float = 3.0, *, since: float | None = None) -> Waited:
        """Wait for channel ``channel``'s banner (number and name); ``since`` (monotonic time of the
        key press) makes ``seconds`` the zap time."""
        result = wait_for_match(
            self.assets.image(f"banner-{channel}.png"),
            self.capture,
            region=self.assets.region("banner"),
            timeout_secs=timeout,
            since=since,
            rig=self.rig,
            what=f"banner of channel {channel}",
            symptom="no-channel-banner",
        )
        result.details.setdefault("target", f"channel {channel} banner")
        return self._waited(result, since)

    def expect_motion(self, timeout: float = 3.0, consecutive: str = "5/8", *, since: float | None = None) -> Waited:
        """Wait for a moving live picture (``consecutive``: motion in x of the last y frames)."""
        result = wait_for_motion(
            self.capture,
            region=self.assets.region("live_motion"),
            consecutive=consecutive,
            timeout_secs=timeout,
            since=since,
            rig=self.rig,
            what="moving video",
            symptom="video-frozen",
        )
        return self._waited(result, since)

    def expect_black(self, timeout: float = 3.0, *, since: float | None = None) -> Waited:
        """Wait for an all-black picture (standby)."""
        result = wait_for_black(
            self.capture, timeout_secs=timeout, since=since, rig=self.rig, what="black screen (standby)"
        )
        return self._waited(result, since)

    def expect_picture(self, timeout: float = 5.0, *, since: float | None = None) -> Waited:
        """Wait for a picture that is not black (after resume)."""
        result = wait_for_picture(self.capture, timeout_secs=timeout, since=since, rig=self.rig)
        return self._waited(result, since)

    def zap_up(self, remote: Any, start: int, zaps: int, *, banner_bound: float, motion_bound: float) -> list[float]:
        """Press CHANNELUP ``zaps`` times from channel ``start``: each press must bring the next
        channel's banner within ``banner_bound`` and moving live TV within ``motion_bound`` seconds.
        Returns the seconds from each press to moving live TV.

        Example::

            times = tv.zap_up(remote, 1, 5, banner_bound=3, motion_bound=4)
        """
        channel, times = start, []
        for _ in range(zaps):
            expected = self.next_channel(channel)
            pressed = time.monotonic()
            remote.press("KEY_CHANNELUP")
            self.expect_banner(expected, timeout=banner_bound, since=pressed)
            times.append(self.expect_motion(timeout=motion_bound, since=pressed).seconds)
            channel = expected
        return times

    def expect_no_signal(self, timeout: float = 5.0, *, since: float | None = None) -> Waited:
        """Wait for the box's own "no signal on this channel" screen (the stream stopped reaching it)."""
        result = wait_until(
            is_no_signal,
            self.capture,
            timeout_secs=timeout,
            since=since,
            rig=self.rig,
            what="the box's no-signal screen",
            symptom="no-outage-screen",
        )
        return self._waited(result, since)


__all__ = ["IMAGES", "LiveTv", "Tv", "Waited"]
