"""Traffic generators: rate held within 5 %, storms reach the box's link, unsafe targets refused."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from lab.network.netns import RigLink, loopback_link
from lab.network.pcap import PcapRecorder
from lab.network.safety import TrafficPolicy, UnsafeTraffic
from lab.network.traffic import TrafficGenerator
from lab.rig import NetworkConfig

from .conftest import needs_netns


@needs_netns
def test_udp_stream_rate_within_5_percent_as_the_box_counts_it(link: RigLink) -> None:
    gen = TrafficGenerator(link)
    with link.in_box():
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # As root, past net.core.rmem_max: a busy CI host must not drop on the receiving side what the
    # generator sent at rate (the generator's rate is what is under test).
    rx.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 16 << 20)
    rx.bind((link.box_ip, 7777))
    rx.settimeout(0.5)
    times: list[float] = []
    frames = gen.udp_frames(link.box_ip, 7777, 500)  # built (scapy imported) before the clock starts

    def count() -> None:
        try:
            while True:
                rx.recv(2048)
                times.append(time.monotonic())
        except TimeoutError:
            pass

    th = threading.Thread(target=count)
    th.start()
    stats = gen.send(frames, pps=5000, seconds=1.5)
    th.join()
    assert stats.sent == 7500 and stats.rate_error < 0.05
    assert len(times) >= 7500 * 0.99  # what the box saw
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert abs(rate - 5000) / 5000 < 0.05, rate


@needs_netns
def test_storms_and_fuzz_go_out_on_the_rigs_link_only(link: RigLink, tmp_path: Path) -> None:
    gen = TrafficGenerator(link)
    with PcapRecorder(link, tmp_path / "storm.pcap") as rec:
        igmp = gen.igmp_storm(pps=2000, seconds=0.5, groups=["239.1.1.100", "239.1.1.101"])
        arp = gen.arp_storm(pps=2000, seconds=0.25)
        bcast = gen.broadcast_storm(pps=2000, seconds=0.25)
        fuzz = gen.fuzz(count=120, pps=2000, seed=5)
        time.sleep(0.2)
    assert igmp.rate_error < 0.05 and arp.rate_error < 0.05 and bcast.rate_error < 0.05
    from scapy.layers.igmp import IGMP
    from scapy.layers.l2 import ARP
    from scapy.utils import rdpcap

    pkts = rdpcap(str(rec.path))
    n_igmp = sum(1 for p in pkts if IGMP in p)
    n_arp = sum(1 for p in pkts if ARP in p)
    assert n_igmp >= igmp.sent * 0.99
    assert n_arp >= arp.sent * 0.99
    joins = {p[IGMP].gaddr for p in pkts if IGMP in p and p[IGMP].type == 0x16}
    assert joins == {"239.1.1.100", "239.1.1.101"}
    assert fuzz.sent == 120
    # fuzzing is seeded: the same seed builds the same packets
    assert gen.fuzz_frames(30, seed=9) == gen.fuzz_frames(30, seed=9)
    assert gen.fuzz_frames(30, seed=9) != gen.fuzz_frames(30, seed=10)


def test_destinations_outside_lab_addresses_are_refused_before_sending() -> None:
    link = loopback_link("plain", NetworkConfig(lab_addresses=["127.0.0.0/8", "239.1.1.0/24"]))
    gen = TrafficGenerator(link)
    for bad in ("8.8.8.8", "10.0.0.1", "192.168.1.1", "239.2.2.2"):
        with pytest.raises(UnsafeTraffic, match=f"refusing to send to {bad}"):
            gen.udp_stream(bad, pps=10, seconds=1)
    with pytest.raises(UnsafeTraffic):
        gen.igmp_storm(pps=10, seconds=1, groups=["239.9.9.9"])
    with pytest.raises(UnsafeTraffic, match="interface 'lo'"):
        TrafficGenerator(link, TrafficPolicy("plain", ("127.0.0.0/8",), frozenset({"eth0"})))
    # a rig that lists no lab addresses may send nowhere
    empty = TrafficGenerator(loopback_link("none", NetworkConfig()))
    with pytest.raises(UnsafeTraffic, match="none listed"):
        empty.udp_stream("127.0.0.1", pps=10, seconds=1)


def test_frames_with_a_forbidden_destination_are_refused_whole() -> None:
    link = loopback_link("plain", NetworkConfig(lab_addresses=["127.0.0.0/8"]))
    gen = TrafficGenerator(link)
    good = gen.udp_frames("127.0.0.1")
    bad = bytearray(good[0])
    bad[30:34] = socket.inet_aton("1.1.1.1")
    with pytest.raises(UnsafeTraffic, match="1.1.1.1"):
        gen.send([good[0], bytes(bad)], pps=10, count=2)
