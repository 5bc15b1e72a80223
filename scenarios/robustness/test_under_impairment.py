"""Failure situations under network impairment: standby/resume loops, power cycles and zapping while
the rig's link runs an impairment profile from rigs/profiles (parametrised; ``--net-profile`` runs
them under another). The box's live TV crosses that link (``iptv_link`` proves it by the box's own
IGMP join, else the scenario is skipped with the reason), so every resume, boot and zap must rejoin
and decode through the impaired network: a moving picture within the bounds, no death on the console.

    pytest scenarios/robustness/test_under_impairment.py --rigs rigs/iptv.yaml
"""

from __future__ import annotations

import json
import statistics
import time

import pytest

from lab.errors import InfraError

pytestmark = pytest.mark.stb(features=["iptv", "ir", "hdmi"])

CYCLES = 3
ZAPS = 4
POWER_CYCLES = 2
BLACK_BOUND_S = 5.0
PICTURE_BOUND_S = 8.0
MOTION_BOUND_S = 5.0  # a join and the next IDR (1 s GOP), and retransmission-free loss on top
BANNER_BOUND_S = 3.0
HITS = ("dropped", "duplicated", "reordered", "corrupted", "delayed")  # what the shaper did to packets


def _impaired(net, stb, record_measurement) -> None:
    """Evidence that the live TV crossed the impaired link: the shaper carried (and hit) its packets
    towards the box; a shaper that saw nothing is the lab's failure, not a pass."""
    counters = net.shaper.counters()
    down = counters.get("downstream", {})
    record_measurement("shaper_downstream", json.dumps(down, sort_keys=True))
    hit = sum(v for k, v in down.items() if k.startswith(HITS) and isinstance(v, int))
    if not down.get("received") or (not hit and net.shaper.active_backend == "userspace"):
        raise InfraError(
            f"the shaper carried no impaired traffic to the box under {net.profile.name}: {counters}",
            rig=stb.rig_name,
            instrument="network",
        )


def _live(stb, tv, channel: int) -> None:
    stb.run(f"tune {channel}").check()
    tv.expect_motion(timeout=MOTION_BOUND_S)


@pytest.mark.parametrize("net_profile", ["lossy-2pct", "congested-wifi"], indirect=True)
def test_standby_resume_loop_under_impairment(iptv_link, net, net_profile, stb, remote, tv, record_measurement):
    """Standby and resume, again and again, on an impaired link: each resume gives moving live TV."""
    assert net.shaper.profile.name == net_profile.name and not net.profile.is_clean
    _live(stb, tv, tv.channels[0])
    resumes = []
    for _ in range(CYCLES):
        remote.press("KEY_POWER")
        tv.expect_black(timeout=BLACK_BOUND_S)
        pressed = time.monotonic()
        remote.press("KEY_POWER")
        tv.expect_picture(timeout=PICTURE_BOUND_S, since=pressed)
        resumes.append(tv.expect_motion(timeout=MOTION_BOUND_S, since=pressed).seconds)
    record_measurement("resume_to_motion_max_s", f"{max(resumes):.3f}")
    _impaired(net, stb, record_measurement)
    assert stb.run("true").exit_code == 0


@pytest.mark.parametrize("net_profile", ["lossy-2pct"], indirect=True)
def test_power_cycles_under_impairment(iptv_link, net, net_profile, stb, tv, record_measurement):
    """Power cycles on an impaired link: after every boot the box tunes and live TV moves again."""
    assert not net.profile.is_clean
    boots = []
    for _ in range(POWER_CYCLES):
        boots.append(stb.reboot(hard=True))
        _live(stb, tv, tv.channels[0])
    record_measurement("boot_under_impairment_max_s", f"{max(boots):.2f}")
    _impaired(net, stb, record_measurement)


@pytest.mark.parametrize("net_profile", ["congested-wifi"], indirect=True)
def test_zapping_under_impairment(iptv_link, net, net_profile, stb, remote, tv, record_measurement):
    """Zapping on an impaired link: every zap gives the next channel's banner and moving live TV."""
    assert not net.profile.is_clean
    channel = tv.channels[0]
    _live(stb, tv, channel)
    times = tv.zap_up(remote, channel, ZAPS, banner_bound=BANNER_BOUND_S, motion_bound=MOTION_BOUND_S)
    record_measurement("zap_to_motion_median_s", f"{statistics.median(times):.3f}")
    _impaired(net, stb, record_measurement)
