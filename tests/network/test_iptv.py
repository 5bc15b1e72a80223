"""Headend -> box receiver across the rig's link: real multicast, IGMP, decode, loss artifacts."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from support import eventually

from lab.emulator.headend import ChannelMap, Headend
from lab.emulator.iptv import IptvReceiver
from lab.network.impair import Shaper
from lab.network.netns import RigLink
from lab.network.pcap import PcapRecorder
from lab.network.profile import Profile
from lab.network.ts_check import check_multicast

from .conftest import TEST_SETTINGS, needs_netns


def _bg(number: int) -> np.ndarray:
    from lab.emulator.screen import channel

    return np.array(channel(number).background, dtype=float)


def _colour_distance(img: np.ndarray, number: int) -> float:
    # Most of each channel's picture is its own background (plus a faint texture): the median of the
    # whole picture. Not of a patch: the moving 60 px square covers most of any small patch in some
    # frames (9 of the loop's 100 for a 100x60 patch), and then the patch's colour is the square's.
    return float(np.linalg.norm(np.median(img.reshape(-1, 3).astype(float), axis=0) - _bg(number)))


def _igmp_events(pcap: Path) -> list[str]:
    """'join G' / 'leave G' for every IGMP v2/v3 membership change in a pcap (parsed by hand)."""
    from scapy.utils import rdpcap

    out: list[str] = []
    for p in rdpcap(str(pcap)):
        raw = bytes(p)
        if raw[12:14] != b"\x08\x00" or raw[23] != 2:
            continue
        igmp = raw[14 + (raw[14] & 0x0F) * 4 :]
        if igmp[0] == 0x22:  # v3 report: records of (type, aux, nsrc, group, sources)
            i = 8
            for _ in range(int.from_bytes(igmp[6:8], "big")):
                rtype, aux, nsrc = igmp[i], igmp[i + 1], int.from_bytes(igmp[i + 2 : i + 4], "big")
                group = ".".join(str(b) for b in igmp[i + 4 : i + 8])
                # 2 is-exclude / 4 to-exclude {} = joined; 1 is-include / 3 to-include {} = left
                out.append(("join " if rtype in (2, 4) else "leave ") + group)
                i += 8 + 4 * nsrc + 4 * aux
        elif igmp[0] in (0x12, 0x16, 0x17):
            out.append(("leave " if igmp[0] == 0x17 else "join ") + ".".join(str(b) for b in igmp[4:8]))
    return out


@needs_netns
def test_box_tunes_zaps_and_sees_no_signal_on_an_absent_channel(
    link: RigLink, cmap: ChannelMap, channel_cache: Path, tmp_path: Path
) -> None:
    states: list[str] = []
    frames: list[np.ndarray] = []
    with (
        Headend(cmap, interface_ip=link.lab_ip, cache_dir=channel_cache, channels=[1, 2], settings=TEST_SETTINGS),
        PcapRecorder(link, tmp_path / "igmp.pcap", bpf="igmp") as rec,
        IptvReceiver(cmap, namespace=link.namespace, on_state=states.append, on_frame=frames.append) as rx,
    ):
        rx.tune(1)
        assert rx.wait_state("playing", 5), rx.stats
        eventually(lambda: len(frames) >= 8, timeout=5, what="8 frames of channel 1")
        img = rx.latest_frame()
        assert img is not None and img.shape == (TEST_SETTINGS.height, TEST_SETTINGS.width, 3)
        assert _colour_distance(img, 1) < _colour_distance(img, 2)
        # the picture moves (a live channel, not a still)
        assert len(frames) >= 8 and float(np.abs(frames[-1].astype(int) - frames[-8].astype(int)).mean()) > 0.5
        rx.tune(2)
        assert rx.wait_state("playing", 5)  # playing: the latest frame is one of channel 2
        img2 = rx.latest_frame()
        assert img2 is not None and _colour_distance(img2, 2) < _colour_distance(img2, 1)
        rx.tune(3)  # in the channel map, but the headend does not play it
        assert rx.wait_state("no_signal", 5)
        assert rx.stats["cc_errors"] == 0 and rx.stats["decode_errors"] == 0
        rx.stop()
        time.sleep(0.3)
    assert states[:2] == ["tuning", "playing"] and "no_signal" in states
    joined = _igmp_events(rec.path)
    groups = [c.group for c in cmap.channels]
    for g in groups:
        assert f"join {g}" in joined, joined
    assert f"leave {groups[0]}" in joined and f"leave {groups[1]}" in joined, joined


@needs_netns
def test_lost_packets_give_artifacts_then_the_picture_recovers(
    link: RigLink, cmap: ChannelMap, channel_cache: Path
) -> None:
    frames: list[np.ndarray] = []
    shaper = Shaper(link, backend="userspace")
    with (
        Headend(cmap, interface_ip=link.lab_ip, cache_dir=channel_cache, channels=[1], settings=TEST_SETTINGS),
        IptvReceiver(cmap, namespace=link.namespace, on_frame=frames.append) as rx,
    ):
        rx.tune(1)
        assert rx.wait_state("playing", 5)
        clean_live = check_multicast(cmap.channels[0].group, 5000, 1.0, namespace=link.namespace)
        assert clean_live.ok and clean_live.packets > 300, clean_live.summary()
        shaper.apply(Profile(name="heavy", loss=10, direction="downstream", seed=1))
        before = rx.stats["cc_errors"]
        lossy_live = check_multicast(cmap.channels[0].group, 5000, 1.5, namespace=link.namespace)
        shaper.clear()
        # ~10 % of ~100 datagrams lost: each loss is a continuity gap for the box and the checker
        assert rx.stats["cc_errors"] - before > 3
        assert lossy_live.errors["cc_error"] > 3
        # the decoder saw damage and kept going
        assert rx.stats["frames"] > 25
        n = len(frames)
        eventually(lambda: len(frames) > n + 20, timeout=5, what="20 more frames on a clean link")
        assert rx.state == "playing"


@pytest.mark.parametrize("loopback", [True])
def test_headend_and_receiver_work_loopback_only(loopback: bool, cmap: ChannelMap, channel_cache: Path) -> None:
    with (
        Headend(cmap, interface_ip="127.0.0.1", cache_dir=channel_cache, channels=[1], settings=TEST_SETTINGS),
        IptvReceiver(cmap, interface_ip="127.0.0.1") as rx,
    ):
        rx.tune(1)
        assert rx.wait_state("playing", 5), rx.stats


@needs_netns
def test_rig_iptv_builds_the_link_plays_and_cleans_up(
    cmap: ChannelMap, channel_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lab.emulator.iptv import RigIptv
    from lab.network.netns import namespaces

    from .conftest import make_config

    monkeypatch.setenv("STBLAB_NETNS_STATE", str(tmp_path))
    cfg = make_config("iptv")
    states: list[str] = []
    iptv = RigIptv(
        "rig-iptv", cfg, channel_map=cmap, cache_dir=str(channel_cache), settings=TEST_SETTINGS,
        absent=(3,), on_state=states.append,
    ).start()  # fmt: skip
    try:
        assert cfg.namespace in namespaces()
        iptv.tune(2)
        assert iptv.receiver is not None and iptv.receiver.wait_state("playing", 5)
        assert iptv.latest_frame() is not None
        iptv.tune(3)  # not played by the headend
        assert iptv.receiver.wait_state("no_signal", 5)
        assert iptv.state == "no_signal" and states[-1] == "no_signal"
    finally:
        iptv.close()
    assert cfg.namespace not in namespaces()


@needs_netns
def test_on_demand_headend_sends_only_joined_channels(link: RigLink, cmap: ChannelMap, channel_cache: Path) -> None:
    g1, g2 = cmap.channels[0].group, cmap.channels[1].group
    with (
        Headend(
            cmap, interface_ip=link.lab_ip, cache_dir=channel_cache, channels=[1, 2], settings=TEST_SETTINGS,
            on_demand_interface=link.lab_if,
        ) as head,
        IptvReceiver(cmap, namespace=link.namespace) as rx,
    ):  # fmt: skip
        time.sleep(0.5)
        assert head.stats() == {1: 0, 2: 0}  # nobody joined: nothing on the wire
        rx.tune(1)
        assert rx.wait_state("playing", 5)
        sent = head.stats()
        assert sent[1] > 0 and sent[2] == 0
        rx.tune(2)
        assert rx.wait_state("playing", 5)
        assert head.igmp is not None
        eventually(lambda: g1 not in head.igmp.members(), timeout=5, what="the headend seeing channel 1 left")
        mark = head.stats()[2]
        # the sender went round since (a channel 1 datagram it had decided on before is counted)
        eventually(lambda: head.stats()[2] > mark + 1, timeout=5, what="channel 2 still sent")
        before = head.stats()
        time.sleep(0.5)  # a window in which channel 1 must not be sent (asserting an absence, not waiting)
        after = head.stats()
        assert after[1] == before[1]  # left: channel 1 no longer forwarded
        assert after[2] > before[2]
        assert head.igmp is not None
        events = [(what, g) for _, what, g in head.igmp.events]
        assert ("join", g1) in events and ("leave", g1) in events and ("join", g2) in events
        # the querier keeps the membership alive while the box stays tuned
        assert head.igmp.members() == {g2}
