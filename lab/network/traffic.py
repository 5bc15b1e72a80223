"""Load and crafted traffic towards a rig's box, built with scapy and sent at rate from a socket loop.

Every frame is built once with scapy (Ethernet up), checked against the rig's
:class:`~lab.network.safety.TrafficPolicy`, and then the bytes are sent from a plain
``AF_PACKET`` socket on the rig's lab-side interface, paced in small batches against a monotonic
clock so the rate holds within a few percent. Generators: a UDP stream, background IPTV streams
(valid MPEG-TS), IGMP join/leave storms, broadcast and ARP storms, and malformed/fuzzed packets.

Example::

    gen = TrafficGenerator(link)                      # policy from the rig file
    stats = gen.igmp_storm(pps=2000, seconds=3)       # SendStats(sent=6000, pps=1998.7, ...)
    with gen.background(gen.iptv_frames("239.1.1.20", mbps=8), pps=...) as bg:
        ...                                           # a stream runs while the test zaps
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import random
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from lab.errors import InfraError, TestError
from lab.network import ts
from lab.network.netns import RigLink
from lab.network.safety import TrafficPolicy
from lab.steps import step

log = logging.getLogger("stblab.network.traffic")

BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"


@dataclass
class SendStats:
    """What a generator did: packets and bytes sent, over how long, against the rate asked."""

    sent: int
    bytes: int
    seconds: float
    target_pps: float
    errors: int = 0

    @property
    def pps(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    @property
    def mbps(self) -> float:
        return self.bytes * 8 / self.seconds / 1e6 if self.seconds > 0 else 0.0

    @property
    def rate_error(self) -> float:
        """Relative error of the achieved packet rate (0.01 = 1 % off)."""
        return abs(self.pps - self.target_pps) / self.target_pps if self.target_pps else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "sent": self.sent,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 4),
            "pps": round(self.pps, 1),
            "mbps": round(self.mbps, 3),
            "target_pps": self.target_pps,
            "errors": self.errors,
        }


def send_at_rate(
    sock: socket.socket,
    frames: Sequence[bytes],
    pps: float,
    *,
    seconds: float | None = None,
    count: int | None = None,
    stop: threading.Event | None = None,
) -> SendStats:
    """Send ``frames`` round-robin on a connected/bound socket at ``pps`` for ``seconds`` or ``count``.

    Paced in batches against the monotonic clock: at any moment the number sent is the number due,
    so short stalls are caught up and the average rate holds.
    """
    if pps <= 0:
        raise TestError(f"rate must be > 0 packets/s, got {pps}")
    if not frames:
        raise TestError("nothing to send")
    if seconds is None and count is None:
        raise TestError("give seconds= or count=")
    total = count if count is not None else int(round(pps * float(seconds or 0)))
    n = len(frames)
    sent = nbytes = errors = 0
    send = sock.send
    t0 = time.monotonic()
    while sent < total:
        if stop is not None and stop.is_set():
            break
        now = time.monotonic()
        due = min(total, int((now - t0) * pps) + 1)
        while sent < due:
            data = frames[sent % n]
            try:
                send(data)
                nbytes += len(data)
            except BlockingIOError:
                errors += 1
            except OSError as exc:
                errors += 1
                if errors > 1000 and errors > sent:
                    raise InfraError(f"traffic send keeps failing: {exc}", instrument="network") from exc
            sent += 1
        if sent < total:
            nxt = t0 + sent / pps
            delay = nxt - time.monotonic()
            if delay > 0.0005:
                time.sleep(min(delay, 0.05))
    elapsed = max(time.monotonic() - t0, 1e-9)
    # the last packet was due at (total-1)/pps: measure the rate over the span the packets took
    span = max(elapsed, (sent - 1) / pps) if sent > 1 else elapsed
    return SendStats(sent - errors, nbytes, span if sent == total else elapsed, pps, errors)


def _mac_of(namespace: str | None, ifname: str) -> str:
    argv = ["ip", "-j", "link", "show", ifname]
    if namespace:
        argv = ["ip", "-n", namespace, "-j", "link", "show", ifname]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=5)
    if proc.returncode != 0:
        raise InfraError(f"cannot read MAC of {ifname}: {proc.stderr.strip()}", instrument="network")
    return json.loads(proc.stdout)[0]["address"]


def multicast_mac(group: str) -> str:
    """The Ethernet address of an IPv4 multicast group (01:00:5e + low 23 bits)."""
    low = int(ipaddress.ip_address(group)) & 0x7FFFFF
    return f"01:00:5e:{low >> 16:02x}:{(low >> 8) & 0xFF:02x}:{low & 0xFF:02x}"


class TrafficGenerator:
    """Generators for one rig's link; every destination passes the rig's policy first."""

    def __init__(self, link: RigLink, policy: TrafficPolicy | None = None) -> None:
        self.link = link
        self.rig_name = link.rig_name
        self.policy = policy or TrafficPolicy.for_link(link)
        self.ifname = link.lab_if if link.namespace else "lo"
        self.policy.check_interface(str(self.ifname))
        if link.namespace:
            self.src_mac = _mac_of(None, str(self.ifname))
            self.box_mac = _mac_of(link.namespace, link.box_if)
        else:
            self.src_mac = self.box_mac = "00:00:00:00:00:00"
        self.src_ip = link.lab_ip
        self.box_ip = link.box_ip

    # -- sockets and sending ----------------------------------------------------------------------
    def _socket(self) -> socket.socket:
        self.policy.check_interface(str(self.ifname))
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        sock.bind((str(self.ifname), 0))
        return sock

    def _check_frames(self, frames: Sequence[bytes]) -> None:
        """Every frame's IPv4/ARP destination must be allowed (checked before anything is sent)."""
        seen: set[bytes] = set()
        for f in frames:
            if len(f) < 14:
                continue
            etype = f[12:14]
            if etype == b"\x08\x00" and len(f) >= 34:
                dst = f[30:34]
            elif etype == b"\x08\x06" and len(f) >= 42:
                dst = f[38:42]
            else:
                continue
            if dst not in seen:
                seen.add(dst)
                self.policy.check_destination(socket.inet_ntoa(dst), on_link=True)

    @step("network")
    def send(
        self, frames: Sequence[bytes], pps: float, *, seconds: float | None = None, count: int | None = None
    ) -> SendStats:
        """Send prebuilt frames at ``pps`` (round-robin) for ``seconds`` or ``count`` packets."""
        self._check_frames(frames)
        with contextlib.closing(self._socket()) as sock:
            stats = send_at_rate(sock, frames, pps, seconds=seconds, count=count)
        log.info("rig %s: sent %s", self.rig_name, stats.as_dict())
        return stats

    @contextlib.contextmanager
    def background(self, frames: Sequence[bytes], pps: float, *, seconds: float = 3600) -> Iterator[BackgroundRun]:
        """Run a generator in a thread for the block (stopped at exit); ``.stats`` after the block."""
        self._check_frames(frames)
        run = BackgroundRun(self._socket(), frames, pps, seconds)
        run.start()
        try:
            yield run
        finally:
            run.stop()

    # -- frame builders (scapy; built once) ---------------------------------------------------------
    def udp_frames(self, dst: str, port: int = 9, size: int = 1000, *, sport: int = 40000) -> list[bytes]:
        """One UDP datagram of ``size`` payload bytes to ``dst`` (unicast to the box, or multicast)."""
        from scapy.layers.inet import IP, UDP
        from scapy.layers.l2 import Ether

        self.policy.check_destination(dst)
        mac = multicast_mac(dst) if ipaddress.ip_address(dst).is_multicast else self.box_mac
        return [
            bytes(
                Ether(src=self.src_mac, dst=mac)
                / IP(src=self.src_ip, dst=dst, ttl=1)
                / UDP(sport=sport, dport=port)
                / (b"\x00" * size)
            )
        ]

    def iptv_frames(self, group: str, port: int = 5000, *, datagrams: int = 64) -> list[bytes]:
        """Background IPTV: datagrams of 7 valid TS packets (PAT + null packets, CC counting) to a group."""
        from scapy.layers.inet import IP, UDP
        from scapy.layers.l2 import Ether

        self.policy.check_destination(group)
        frames = []
        cc = 0
        for i in range(datagrams):
            pkts = []
            for k in range(ts.PER_DATAGRAM):
                if k == 0 and i % 8 == 0:
                    pat = bytes([0x47, 0x40, 0x00, 0x10 | (i // 8) & 0x0F]) + _PAT_SECTION
                    pkts.append(pat + b"\xff" * (ts.PACKET - len(pat)))
                else:
                    pkts.append(bytes([0x47, 0x1F, 0xFF, 0x10 | cc]) + b"\xff" * 184)
                    cc = (cc + 1) & 0x0F
            frames.append(
                bytes(
                    Ether(src=self.src_mac, dst=multicast_mac(group))
                    / IP(src=self.src_ip, dst=group, ttl=1)
                    / UDP(sport=40001, dport=port)
                    / b"".join(pkts)
                )
            )
        return frames

    def igmp_frames(self, groups: Sequence[str], *, leave: bool = True) -> list[bytes]:
        """IGMPv2 membership reports (and leaves to 224.0.0.2) for ``groups``, as a storm repeats them."""
        from scapy.layers.igmp import IGMP
        from scapy.layers.inet import IP
        from scapy.layers.l2 import Ether

        frames = []
        for g in groups:
            self.policy.check_destination(g)
            rep = (
                Ether(src=self.src_mac, dst=multicast_mac(g))
                / IP(src=self.src_ip, dst=g, ttl=1, options=[b"\x94\x04\x00\x00"])
                / IGMP(type=0x16, gaddr=g)
            )
            frames.append(bytes(rep))
            if leave:
                lv = (
                    Ether(src=self.src_mac, dst=multicast_mac("224.0.0.2"))
                    / IP(src=self.src_ip, dst="224.0.0.2", ttl=1, options=[b"\x94\x04\x00\x00"])
                    / IGMP(type=0x17, gaddr=g)
                )
                frames.append(bytes(lv))
        return frames

    def broadcast_frames(self, size: int = 200) -> list[bytes]:
        """A subnet-broadcast UDP frame to ff:ff:ff:ff:ff:ff (a broadcast storm repeats it)."""
        from scapy.layers.inet import IP, UDP
        from scapy.layers.l2 import Ether

        net = ipaddress.ip_interface(f"{self.box_ip}/{self.link.prefixlen}").network
        dst = str(net.broadcast_address) if self.link.namespace else "127.255.255.255"
        self.policy.check_destination(dst, on_link=True)
        return [
            bytes(
                Ether(src=self.src_mac, dst=BROADCAST_MAC)
                / IP(src=self.src_ip, dst=dst, ttl=1)
                / UDP(sport=137, dport=137)
                / (b"\x00" * size)
            )
        ]

    def arp_frames(self, count: int = 64) -> list[bytes]:
        """ARP who-has for the box from made-up lab hosts, plus gratuitous ARPs (an ARP storm)."""
        from scapy.layers.l2 import ARP, Ether

        self.policy.check_destination(self.box_ip)
        net = ipaddress.ip_interface(f"{self.box_ip}/{self.link.prefixlen}").network
        hosts = [str(h) for h, _ in zip(net.hosts(), range(count), strict=False)]
        frames = []
        for i, h in enumerate(hosts):
            mac = f"02:00:00:aa:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}"
            if i % 2:
                frames.append(bytes(Ether(src=mac, dst=BROADCAST_MAC) / ARP(op=1, hwsrc=mac, psrc=h, pdst=self.box_ip)))
            else:
                frames.append(
                    bytes(Ether(src=mac, dst=BROADCAST_MAC) / ARP(op=2, hwsrc=mac, psrc=h, pdst=h, hwdst=BROADCAST_MAC))
                )
        return frames

    def fuzz_frames(self, count: int = 256, *, seed: int = 0) -> list[bytes]:
        """Malformed and fuzzed IPv4 packets to the box (bad header lengths, checksums, truncations,
        fragments, random options and payloads, scapy ``fuzz()`` of UDP/TCP/ICMP), seeded."""
        from scapy.layers.inet import ICMP, IP, TCP, UDP
        from scapy.layers.l2 import Ether
        from scapy.packet import Raw, fuzz

        self.policy.check_destination(self.box_ip)
        rng = random.Random(seed)
        random.seed(seed)  # scapy's volatile fields draw from the random module
        eth = Ether(src=self.src_mac, dst=self.box_mac)
        frames: list[bytes] = []
        for i in range(count):
            kind = i % 6
            ip = IP(src=self.src_ip, dst=self.box_ip, id=rng.randrange(65536))
            if kind == 0:
                pkt = eth / fuzz(ip.copy() / UDP(dport=rng.choice([5000, 22, 80, 1900])))
            elif kind == 1:
                pkt = eth / fuzz(ip.copy() / TCP(dport=rng.choice([22, 80, 443])))
            elif kind == 2:
                pkt = eth / ip / fuzz(ICMP())
            elif kind == 3:  # bad header length and checksum
                pkt = eth / IP(bytes(ip / UDP(dport=5000) / Raw(b"x" * 32)))
                pkt[IP].ihl = rng.choice([0, 1, 4, 15])
                pkt[IP].chksum = rng.randrange(65536)
            elif kind == 4:  # overlapping/odd fragments
                pkt = (
                    eth
                    / IP(src=self.src_ip, dst=self.box_ip, flags="MF", frag=rng.randrange(8), id=7)
                    / Raw(bytes(rng.randrange(256) for _ in range(rng.randrange(8, 64))))
                )
            else:  # truncated: header says more than is there
                pkt = (
                    eth / IP(src=self.src_ip, dst=self.box_ip, len=1400) / UDP(dport=5000, len=1380) / Raw(b"\x47" * 40)
                )
            data = bytes(pkt)
            # keep the destination field honest even when fuzzing rewrote it
            data = data[:30] + socket.inet_aton(self.box_ip) + data[34:] if len(data) >= 34 else data
            frames.append(data[:1514])
        return frames

    # -- the generators ------------------------------------------------------------------------------
    def udp_stream(self, dst: str, *, pps: float, seconds: float, port: int = 9, size: int = 1000) -> SendStats:
        """A constant-rate UDP stream to ``dst``."""
        return self.send(self.udp_frames(dst, port, size), pps, seconds=seconds)

    def iptv_background(self, group: str, *, mbps: float, seconds: float, port: int = 5000) -> SendStats:
        """A background IPTV stream of ``mbps`` to ``group`` (valid TS, PAT + stuffing)."""
        frames = self.iptv_frames(group, port)
        pps = mbps * 1e6 / 8 / len(frames[0])
        return self.send(frames, pps, seconds=seconds)

    def igmp_storm(self, *, pps: float, seconds: float, groups: Sequence[str] | None = None) -> SendStats:
        """Join/leave storm over ``groups`` (default: the 239.x networks of lab_addresses, 64 groups)."""
        return self.send(self.igmp_frames(groups or self.default_groups()), pps, seconds=seconds)

    def broadcast_storm(self, *, pps: float, seconds: float, size: int = 200) -> SendStats:
        return self.send(self.broadcast_frames(size), pps, seconds=seconds)

    def arp_storm(self, *, pps: float, seconds: float) -> SendStats:
        return self.send(self.arp_frames(), pps, seconds=seconds)

    def fuzz(self, *, count: int = 256, pps: float = 1000, seed: int = 0) -> SendStats:
        """Send ``count`` malformed/fuzzed packets to the box."""
        return self.send(self.fuzz_frames(count, seed=seed), pps, count=count)

    def default_groups(self, n: int = 64) -> list[str]:
        """Up to ``n`` multicast groups from the rig's lab_addresses (for IGMP storms)."""
        out: list[str] = []
        for net in self.policy.lab_addresses:
            network = ipaddress.ip_network(net, strict=False)
            if network.is_multicast:
                for h, _ in zip(network.hosts(), range(n - len(out)), strict=False):
                    out.append(str(h))
        if not out:
            raise TestError(f"rig {self.rig_name}: no multicast network in network.lab_addresses for an IGMP storm")
        return out


# PAT: program 1 -> PMT PID 0x1000 (a valid section with CRC, pointer field first)
def _pat() -> bytes:
    body = bytes([0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0x00, 0x00, 0x00, 0x01, 0xF0, 0x00])
    crc = ts.crc32_mpeg(body)
    return b"\x00" + body + crc.to_bytes(4, "big")


_PAT_SECTION = _pat()


class BackgroundRun:
    """A generator running in a thread until :meth:`stop`; ``stats`` once stopped."""

    def __init__(self, sock: socket.socket, frames: Sequence[bytes], pps: float, seconds: float) -> None:
        self._sock = sock
        self._frames = frames
        self._pps = pps
        self._seconds = seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic-bg", daemon=True)
        self.stats: SendStats | None = None

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        self.stats = send_at_rate(self._sock, self._frames, self._pps, seconds=self._seconds, stop=self._stop)

    def stop(self) -> SendStats | None:
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            self._sock.close()
        return self.stats


__all__ = ["BackgroundRun", "SendStats", "TrafficGenerator", "multicast_mac", "send_at_rate"]
