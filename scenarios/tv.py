"""What a subscriber sees, asserted through lab.video checks on the HDMI capture.

``Tv`` knows a model's reference images (``scenarios/images/<model>/``: channel banners and
logos, regions in ``regions.json``) and waits, in *frame time*, for what should appear after a
key press: the new channel's banner, a moving picture, a black screen. A wait that runs out
raises :class:`lab.video.result.VideoCheckFailed` (a DeviceFault) carrying the deciding frame,
so the plugin attaches it to the report.

Example::

    tv = Tv(capture, model="STB-4K-X1", rig="stb-a")
    remote.press("KEY_CHANNELUP")
    zap = tv.expect_banner(2, timeout=3)     # MatchResult of the banner, with its frame time
    tv.expect_motion(timeout=3)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.errors import DeviceFault, InfraError, TestError
from lab.video import Region, is_black, match
from lab.video.motion import MotionDetector
from lab.video.result import CheckResult, VideoCheckFailed

IMAGES = Path(__file__).resolve().parent / "images"


@dataclass(frozen=True)
class Waited:
    """A satisfied wait: the deciding result and how long it took in frame time (s)."""

    result: CheckResult
    seconds: float
    frames: int


class Tv:
    """Screen expectations for one rig's HDMI capture (see module docstring)."""

    def __init__(self, capture: Any, *, model: str, rig: str | None = None) -> None:
        self.capture = capture
        self.rig = rig
        self.dir = IMAGES / model
        regions_file = self.dir / "regions.json"
        if not regions_file.exists():
            raise TestError(f"no reference images for model {model} (expected {regions_file})")
        self.regions = json.loads(regions_file.read_text())
        self.channels = sorted(int(n) for n in self.regions["channels"])

    def _region(self, name: str) -> Region:
        x0, y0, x1, y1 = self.regions[name]
        return Region(x0, y0, x1 - x0, y1 - y0)

    def next_channel(self, number: int, step: int = 1) -> int:
        """The channel CHANNELUP (``step=1``) or CHANNELDOWN (``-1``) leads to, with wrap-around."""
        i = self.channels.index(number) if number in self.channels else 0
        return self.channels[(i + step) % len(self.channels)]

    def frames(self, timeout: float, since: float | None = None) -> Iterator[Any]:
        """Frames captured after now (or after monotonic time ``since``), for ``timeout`` s of frame time.

        No frame at all is "no signal" (a DeviceFault) while the capture instrument answers, and an
        InfraError when the instrument itself is lost.
        """
        start = since
        wall_deadline = time.monotonic() + timeout + 5.0
        got = False
        for frame in self.capture.frames(timeout=timeout + 2.0, since=since):
            got = True
            if start is None:
                start = frame.time
            yield frame
            if frame.time - start >= timeout or time.monotonic() > wall_deadline:
                break
        self._raise_if_capture_lost()
        if not got:
            raise DeviceFault(f"no HDMI signal for {timeout + 2.0:.0f} s", rig=self.rig, symptom="no-signal")

    def _raise_if_capture_lost(self) -> None:
        """Before a wait that saw nothing is blamed on the box: when frames stopped coming, give the
        capture its ``lost_after`` seconds to tell a lost instrument (InfraError) from a box that
        shows no picture (an encoder that died mid-wait was a "video-frozen" fault before)."""
        deadline = time.monotonic() + float(getattr(self.capture, "lost_after", 0.0))
        while self.capture.signal not in ("signal", "lost") and time.monotonic() < deadline:
            time.sleep(0.25)
        if self.capture.signal == "lost":
            raise InfraError(f"capture lost: {self.capture.last_error}", rig=self.rig, instrument="video")

    def _wait(self, check: Any, timeout: float, what: str, symptom: str, since: float | None = None) -> Waited:
        last: CheckResult | None = None
        start = since
        count = 0
        for frame in self.frames(timeout, since):
            if start is None:
                start = frame.time
            count += 1
            last = check(frame)
            if last:
                return Waited(last, frame.time - start, count)
        assert last is not None
        raise VideoCheckFailed(
            f"{what} not seen within {timeout:g} s ({count} frames)", last, rig=self.rig, symptom=symptom
        )

    def expect_banner(self, channel: int, timeout: float = 3.0, *, since: float | None = None) -> Waited:
        """Wait for channel ``channel``'s banner (number and name) to appear; ``since`` (monotonic
        time of the key press) makes ``seconds`` the zap time."""
        ref = self.dir / f"banner-{channel}.png"
        if not ref.exists():
            raise TestError(f"no banner reference for channel {channel} in {self.dir}")
        region = self._region("banner")
        waited = self._wait(
            lambda f: match(ref, f, region=region), timeout, f"banner of channel {channel}", "no-channel-banner", since
        )
        waited.result.details.setdefault("target", f"channel {channel} banner")
        return waited

    def expect_motion(self, timeout: float = 3.0, consecutive: str = "5/8", *, since: float | None = None) -> Waited:
        """Wait for a moving live picture (``consecutive``: motion in x of the last y frames)."""
        detector = MotionDetector(region=self._region("live_motion"), consecutive=consecutive)
        return self._wait(detector.update, timeout, "moving video", "video-frozen", since)

    def expect_black(self, timeout: float = 3.0, *, since: float | None = None) -> Waited:
        """Wait for an all-black picture (standby)."""
        return self._wait(lambda f: is_black(f), timeout, "black screen (standby)", "not-black", since)

    def expect_picture(self, timeout: float = 5.0, *, since: float | None = None) -> Waited:
        """Wait for a picture that is not black (after resume)."""

        def not_black(frame: Any) -> CheckResult:
            r = is_black(frame)
            return CheckResult("picture", not r.ok, r.frame, r.region, r.score, {"black_max": r.score})

        return self._wait(not_black, timeout, "a picture (not black)", "black-screen", since)


__all__ = ["IMAGES", "Tv", "Waited"]
