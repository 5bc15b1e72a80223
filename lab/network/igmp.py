"""IGMP as a multicast router sees it: membership reports parsed, members tracked, queries sent.

:class:`IgmpListener` watches one interface (an ``AF_PACKET`` socket with a kernel BPF filter, so
only IGMP reaches Python), keeps the set of joined groups from IGMPv2/v3 reports and leaves
(immediate leave with explicit host tracking, as IPTV access nodes do: one host's leave does not
cut a group another host still wants), and acts as the link's querier: a general query every
``query_interval`` seconds makes members re-report, and a group nobody re-reports for
``membership_timeout`` seconds is dropped. The headend plays a channel only while its group has
members -- what a multicast router does, and why a box's IGMP join is what starts its stream.

Example::

    with IgmpListener("sl1a2b3cl", "10.231.1.1") as igmp:
        ...
        igmp.members()        # {'239.1.1.3'}
"""

from __future__ import annotations

import contextlib
import ctypes
import socket
import struct
import threading
import time
from collections.abc import Callable

ETH_P_IP = 0x0800
SO_ATTACH_FILTER = 26
ALL_HOSTS = "224.0.0.1"

# classic BPF: ether type IPv4 and IP protocol 2 (IGMP), else drop
_BPF = [
    (0x28, 0, 0, 12),  # ldh [12]
    (0x15, 0, 3, 0x0800),  # jeq #0x800 ? next : drop
    (0x30, 0, 0, 23),  # ldb [23]
    (0x15, 0, 1, 2),  # jeq #2 ? accept : drop
    (0x06, 0, 0, 0x40000),  # ret #262144 (accept)
    (0x06, 0, 0, 0),  # ret #0 (drop)
]


def igmp_source(frame: bytes) -> str:
    """The IPv4 source address of a frame (the reporting host)."""
    return socket.inet_ntoa(frame[26:30]) if len(frame) >= 34 else "0.0.0.0"


def parse_igmp(frame: bytes) -> list[tuple[str, str]]:
    """('join'|'leave', group) events in one Ethernet frame carrying IGMP (v2 or v3 reports)."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 2:
        return []
    ihl = (frame[14] & 0x0F) * 4
    igmp = frame[14 + ihl :]
    if not igmp:
        return []
    kind = igmp[0]
    if kind in (0x12, 0x16) and len(igmp) >= 8:
        return [("join", socket.inet_ntoa(igmp[4:8]))]
    if kind == 0x17 and len(igmp) >= 8:
        return [("leave", socket.inet_ntoa(igmp[4:8]))]
    if kind != 0x22 or len(igmp) < 8:
        return []
    out: list[tuple[str, str]] = []
    i = 8
    for _ in range(int.from_bytes(igmp[6:8], "big")):
        if i + 8 > len(igmp):
            break
        rtype, aux, nsrc = igmp[i], igmp[i + 1], int.from_bytes(igmp[i + 2 : i + 4], "big")
        group = socket.inet_ntoa(igmp[i + 4 : i + 8])
        if rtype in (2, 4):  # MODE_IS_EXCLUDE / CHANGE_TO_EXCLUDE: wants the group
            out.append(("join", group))
        elif rtype in (1, 3) and nsrc == 0:  # IS_INCLUDE {} / CHANGE_TO_INCLUDE {}: left
            out.append(("leave", group))
        elif rtype in (1, 3, 5):  # include with sources: still a member (SSM)
            out.append(("join", group))
        i += 8 + 4 * nsrc + 4 * aux
    return out


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def general_query(max_resp_tenths: int = 10) -> bytes:
    """An IGMPv3 general query (type 0x11, group 0.0.0.0, QRV 2, QQIC 3 s)."""
    body = struct.pack("!BBH4sBBH", 0x11, max_resp_tenths, 0, b"\x00" * 4, 0x02, 3, 0)
    return body[:2] + struct.pack("!H", _checksum(body)) + body[4:]


class IgmpListener:
    """Tracks multicast membership on ``ifname`` and queries as the link's IGMP querier."""

    def __init__(
        self,
        ifname: str,
        local_ip: str,
        *,
        query_interval: float = 3.0,
        membership_timeout: float = 10.0,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        self.ifname = ifname
        self.local_ip = local_ip
        self.query_interval = query_interval
        self.membership_timeout = membership_timeout
        self.on_change = on_change
        self.events: list[tuple[float, str, str]] = []
        self._members: dict[str, dict[str, float]] = {}  # group -> {reporting host: expiry}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rx: socket.socket | None = None
        self._tx: socket.socket | None = None

    def start(self) -> IgmpListener:
        rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
        prog = b"".join(struct.pack("HBBI", *ins) for ins in _BPF)
        buf = ctypes.create_string_buffer(prog)
        fprog = struct.pack("HL", len(_BPF), ctypes.addressof(buf))
        rx.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        # Storms must not drop a box's join: as root, size the buffer past net.core.rmem_max.
        try:
            rx.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 8 << 20)
        except OSError:
            rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        rx.bind((self.ifname, ETH_P_IP))
        rx.settimeout(0.2)
        self._bpf_buf = buf  # keep the program alive while attached
        tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.local_ip))
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        self._rx, self._tx = rx, tx
        self._thread = threading.Thread(target=self._run, name=f"igmp-{self.ifname}", daemon=True)
        self._thread.start()
        return self

    def members(self) -> set[str]:
        """Groups with a member on the link now."""
        now = time.monotonic()
        with self._lock:
            return {g for g, hosts in self._members.items() if any(t > now for t in hosts.values())}

    def has_members(self, group: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(t > now for t in self._members.get(group, {}).values())

    def query(self) -> None:
        """Send a general query now (members answer within 1 s)."""
        if self._tx is not None:
            with contextlib.suppress(OSError):
                self._tx.sendto(general_query(), (ALL_HOSTS, 0))

    def _change(self, what: str, group: str) -> None:
        self.events.append((time.monotonic(), what, group))
        del self.events[:-1000]
        if self.on_change:
            with contextlib.suppress(Exception):
                self.on_change(what, group)

    def _run(self) -> None:
        assert self._rx is not None
        next_query = time.monotonic()
        next_sweep = next_query
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_query:
                self.query()
                next_query = now + self.query_interval
            try:
                frame = self._rx.recv(2048)
            except TimeoutError:
                frame = b""
            except OSError:
                if self._stop.is_set():
                    return
                continue
            now = time.monotonic()
            expired = []
            # every report on the segment counts, ours included (a storm sent from this side too)
            events = parse_igmp(frame) if frame else []
            host = igmp_source(frame) if frame else ""
            with self._lock:
                for what, group in events:
                    hosts = self._members.setdefault(group, {})
                    had = any(t > now for t in hosts.values())
                    if what == "join":
                        hosts[host] = now + self.membership_timeout
                    else:
                        hosts.pop(host, None)
                    has = any(t > now for t in hosts.values())
                    if has != had:
                        expired.append(("join" if has else "leave", group))
                if now < next_sweep:
                    hosts_to_sweep: list[tuple[str, dict[str, float]]] = []
                else:
                    next_sweep = now + 0.1
                    hosts_to_sweep = list(self._members.items())
                for group, hosts in hosts_to_sweep:
                    alive = {h: t for h, t in hosts.items() if t > now}
                    if len(alive) != len(hosts):
                        self._members[group] = alive
                        if not alive:
                            expired.append(("timeout", group))
                    if not alive:
                        del self._members[group]
            for what, group in expired:
                self._change(what, group)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        for s in (self._rx, self._tx):
            if s:
                with contextlib.suppress(OSError):
                    s.close()

    def __enter__(self) -> IgmpListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["IgmpListener", "general_query", "parse_igmp"]
