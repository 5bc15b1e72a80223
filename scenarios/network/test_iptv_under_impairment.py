"""What a subscriber sees when the access network misbehaves (issue 5 scenarios).

Each scenario impairs the rig's link with a profile from rigs/profiles/ (recorded with the result,
pcap kept on failure) and asserts on the HDMI capture through lab.video checks: banners after zaps,
a moving picture, the box's own "no signal" screen during an outage, block artifacts during burst
loss, and recovery once the network is clean again.

Run one under another profile: ``pytest scenarios/network -k zapping --net-profile congested-wifi``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import cv2
import pytest

from lab.errors import DeviceFault, InfraError
from lab.video import ArtifactDetector, Frame

pytestmark = pytest.mark.stb(features=["iptv", "ir", "hdmi"])

ZAPS = 5
BANNER_BOUND_S = 3.0
MOTION_BOUND_S = 4.0  # a zap waits for the next IDR (1 s GOP) on top of the join
RECOVERY_BOUND_S = 4.0
BANNER_S = 4.5  # the box shows the channel banner for 4 s after a zap
STREAM_SIZE = (480, 270)  # the headend's encoding (lab.emulator.headend.EncodeSettings)


def _zap_through(tv: Any, remote: Any, stb: Any, record_measurement: Any, label: str) -> None:
    start = tv.channels[0]
    stb.run(f"tune {start}").check()
    tv.expect_banner(start, timeout=BANNER_BOUND_S + 2)
    times = tv.zap_up(remote, start, ZAPS, banner_bound=BANNER_BOUND_S, motion_bound=MOTION_BOUND_S)
    record_measurement(f"{label}_zap_to_motion_median_s", f"{statistics.median(times):.3f}")
    record_measurement(f"{label}_zap_to_motion_max_s", f"{max(times):.3f}")


@pytest.mark.parametrize("net_profile", ["lossy-2pct"], indirect=True)
def test_zapping_under_random_loss(iptv_link, net, net_profile, tv, remote, stb, record_measurement):
    """2 % random loss: every zap still gives the banner and a moving picture within bounds."""
    assert net.profile.loss == net_profile.loss
    _zap_through(tv, remote, stb, record_measurement, "loss2")


def test_recovery_after_a_5s_outage(iptv_link, net, tv, stb, record_measurement):
    """The link drops for 5 s: the box shows its no-signal screen, then live TV comes back."""
    stb.run(f"tune {tv.channels[0]}").check()
    tv.expect_motion(timeout=MOTION_BOUND_S)
    profile = net.apply("outage-5s")
    outage = profile.outages[0]
    t0 = net.shaper.applied_at or time.monotonic()
    # during the outage: the picture stops and the box's own "no signal on this channel" screen shows
    lost = tv.expect_no_signal(timeout=outage.start + outage.duration, since=t0)
    record_measurement("outage_to_no_signal_s", f"{lost.seconds - outage.start:.3f}")
    # after it: a moving picture again within the bound
    back_at = t0 + outage.start + outage.duration
    wait = max(0.0, back_at - time.monotonic())
    motion = tv.expect_motion(timeout=wait + RECOVERY_BOUND_S)
    recovered = time.monotonic() - back_at
    record_measurement("outage_recovery_s", f"{recovered:.3f}")
    if recovered > RECOVERY_BOUND_S:
        raise DeviceFault(
            f"live TV took {recovered:.1f} s to come back after the link returned (bound {RECOVERY_BOUND_S:g} s)",
            symptom="slow-outage-recovery",
        )
    assert motion.result


def _native(frame: Any, size: tuple[int, int] = STREAM_SIZE) -> Any:
    """The HDMI frame scaled back to the stream's own resolution, so H.264's 16-pixel macroblocks
    line up with the artifact check's block grid again (the box upscales the decoded picture)."""
    small = cv2.resize(frame.image, size, interpolation=cv2.INTER_AREA)
    return Frame(small, frame.time, frame.seq)


def test_burst_loss_gives_artifacts_then_recovers(iptv_link, net, tv, stb, record_measurement):
    """Gilbert-Elliott bursts during live TV: block artifacts are seen; once clean, they go away."""
    stb.run(f"tune {tv.channels[0]}").check()
    tv.expect_motion(timeout=MOTION_BOUND_S)
    time.sleep(BANNER_S)  # the zap banner is gone: only the picture changes from here on
    detector = ArtifactDetector(min_rise=0.02)
    for frame in tv.capture.frames(2.0):  # the clean baseline
        detector.update(_native(frame))
    net.apply("burst-loss")
    flagged = [r for r in (detector.update(_native(f)) for f in tv.capture.frames(6.0)) if r]
    record_measurement("burst_artifact_frames", len(flagged))
    counters = net.shaper.counters()
    dropped = counters.get("downstream", {}).get("dropped_loss", 0)
    if dropped == 0:
        raise InfraError(
            f"the shaper lost nothing under burst-loss: {counters}", rig=stb.rig_name, instrument="network"
        )
    if not flagged:
        raise DeviceFault(
            f"{dropped} packets lost in bursts but no picture damage detected: the box hides loss (freeze?)",
            symptom="no-artifacts-under-loss",
        )
    net.apply("clean")
    tv.expect_motion(timeout=RECOVERY_BOUND_S, since=time.monotonic())
    time.sleep(1.5)  # the next IDR repairs the picture
    after = [r for r in (detector.update(_native(f)) for f in tv.capture.frames(3.0)) if r]
    record_measurement("artifact_frames_after_recovery", len(after))
    if len(after) > 2:
        raise DeviceFault(f"{len(after)} damaged frames after the network was clean again", symptom="artifacts-persist")


def test_igmp_storm_while_zapping(iptv_link, net, tv, remote, stb, record_measurement):
    """An IGMP join/leave storm on the access link must not break zapping."""
    gen = net.traffic
    with gen.background(gen.igmp_frames(gen.default_groups(32)), pps=2000) as storm:
        _zap_through(tv, remote, stb, record_measurement, "igmp_storm")
    stats = storm.stats
    assert stats is not None and stats.sent > 0
    record_measurement("igmp_storm_pps", f"{stats.pps:.0f}")
