"""IGMP parsing and the router's host tracking, on frames built with scapy (v2) and by hand (v3)."""

from __future__ import annotations

import socket
import struct

from lab.network.igmp import general_query, parse_igmp


def _v3_report(records: list[tuple[int, str, int]]) -> bytes:
    body = b""
    for rtype, group, nsrc in records:
        body += struct.pack("!BBH4s", rtype, 0, nsrc, socket.inet_aton(group)) + b"\x0a\x00\x00\x01" * nsrc
    igmp = struct.pack("!BBHHH", 0x22, 0, 0, 0, len(records)) + body
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(igmp),
        0,
        0,
        1,
        2,
        0,
        socket.inet_aton("10.1.1.2"),
        socket.inet_aton("224.0.0.22"),
    )
    return b"\x01\x00\x5e\x00\x00\x16" + b"\x02" * 6 + b"\x08\x00" + ip + igmp


def test_v3_records_become_joins_and_leaves() -> None:
    frame = _v3_report([(4, "239.1.1.1", 0), (3, "239.1.1.2", 0), (2, "239.1.1.3", 0), (1, "232.1.1.1", 2)])
    assert parse_igmp(frame) == [
        ("join", "239.1.1.1"),  # CHANGE_TO_EXCLUDE {}: a zap to this channel
        ("leave", "239.1.1.2"),  # CHANGE_TO_INCLUDE {}: zapped away
        ("join", "239.1.1.3"),  # MODE_IS_EXCLUDE: answer to a query
        ("join", "232.1.1.1"),  # source-specific include: still a member
    ]


def test_v2_report_and_leave_and_garbage() -> None:
    from scapy.layers.igmp import IGMP
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether

    rep = bytes(Ether() / IP(src="10.1.1.2", dst="239.1.1.9", proto=2) / IGMP(type=0x16, gaddr="239.1.1.9"))
    lv = bytes(Ether() / IP(src="10.1.1.2", dst="224.0.0.2", proto=2) / IGMP(type=0x17, gaddr="239.1.1.9"))
    assert parse_igmp(rep) == [("join", "239.1.1.9")]
    assert parse_igmp(lv) == [("leave", "239.1.1.9")]
    # truncated, non-IGMP and query frames are not membership news
    assert parse_igmp(rep[:20]) == []
    assert parse_igmp(_v3_report([(4, "239.1.1.1", 0)])[:-6]) == []
    q = (
        b"\x01\x00\x5e\x00\x00\x01"
        + b"\x02" * 6
        + b"\x08\x00"
        + bytes(IP(src="10.1.1.1", dst="224.0.0.1", proto=2))
        + general_query()
    )
    assert parse_igmp(q) == []


def test_general_query_checksum_is_valid() -> None:
    q = general_query()
    assert q[0] == 0x11 and len(q) == 12
    total = sum(struct.unpack("!6H", q))
    total = (total >> 16) + (total & 0xFFFF)
    assert total == 0xFFFF
