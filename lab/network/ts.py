"""MPEG transport stream format helpers (ISO/IEC 13818-1): packets, PCR, PSI tables, PES timestamps.

A format, not a driver: the TS checker, the emulated headend and the box's IPTV receiver all read
streams through these functions.

Example::

    pkt = TsPacket.parse(data[0:188])
    pkt.pid, pkt.cc, pkt.pcr          # 256, 7, 1234567890 (27 MHz units) or None
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

PACKET = 188
SYNC = 0x47
NULL_PID = 0x1FFF
PCR_HZ = 27_000_000
PTS_HZ = 90_000
#: TS packets per UDP datagram on IPTV networks (7 x 188 = 1316 bytes).
PER_DATAGRAM = 7
DATAGRAM = PACKET * PER_DATAGRAM
VIDEO_STREAM_TYPES = {0x01: "mpeg1video", 0x02: "mpeg2video", 0x1B: "h264", 0x24: "hevc"}


@dataclass(frozen=True, slots=True)
class TsPacket:
    """The header fields of one 188-byte packet that the checks and demuxers need."""

    pid: int
    pusi: bool
    cc: int
    has_payload: bool
    has_adaptation: bool
    discontinuity: bool
    pcr: int | None  # 27 MHz units
    payload_offset: int  # where the payload starts inside the packet (188 = none)
    tei: bool  # transport error indicator

    @staticmethod
    def parse(pkt: bytes | bytearray | memoryview) -> TsPacket:
        """Parse one packet (the caller checked the sync byte)."""
        b1, b2, b3 = pkt[1], pkt[2], pkt[3]
        afc = (b3 >> 4) & 3
        has_af = bool(afc & 2)
        has_pl = bool(afc & 1)
        off = 4
        pcr = None
        disc = False
        if has_af:
            af_len = pkt[4]
            off = 5 + af_len
            if af_len > 0:
                flags = pkt[5]
                disc = bool(flags & 0x80)
                if flags & 0x10 and af_len >= 7:
                    pcr = decode_pcr(pkt, 6)
        return TsPacket(
            pid=((b1 & 0x1F) << 8) | b2,
            pusi=bool(b1 & 0x40),
            cc=b3 & 0x0F,
            has_payload=has_pl,
            has_adaptation=has_af,
            discontinuity=disc,
            pcr=pcr,
            payload_offset=min(off, PACKET) if has_pl else PACKET,
            tei=bool(b1 & 0x80),
        )


def decode_pcr(pkt: bytes | bytearray | memoryview, at: int) -> int:
    """The 42-bit PCR (base * 300 + extension) stored at byte ``at`` of a packet."""
    b = bytes(pkt[at : at + 6])
    base = (b[0] << 25) | (b[1] << 17) | (b[2] << 9) | (b[3] << 1) | (b[4] >> 7)
    ext = ((b[4] & 1) << 8) | b[5]
    return base * 300 + ext


def encode_pcr(pcr: int) -> bytes:
    """Six bytes of a PCR field for ``pcr`` (27 MHz units)."""
    base = (pcr // 300) % (1 << 33)
    ext = pcr % 300
    return bytes(
        [
            (base >> 25) & 0xFF,
            (base >> 17) & 0xFF,
            (base >> 9) & 0xFF,
            (base >> 1) & 0xFF,
            ((base & 1) << 7) | 0x7E | ((ext >> 8) & 1),
            ext & 0xFF,
        ]
    )


def decode_timestamp(b: bytes | bytearray | memoryview, at: int) -> int:
    """A 33-bit PES PTS/DTS stored in the five bytes at ``at``."""
    return ((b[at] >> 1) & 0x07) << 30 | b[at + 1] << 22 | (b[at + 2] >> 1) << 15 | b[at + 3] << 7 | (b[at + 4] >> 1)


def encode_timestamp(prefix: int, ts: int) -> bytes:
    """Five bytes of a PTS/DTS field (``prefix`` 2 = PTS only, 3 = PTS of PTS+DTS, 1 = DTS)."""
    ts %= 1 << 33
    return bytes(
        [
            (prefix << 4) | (((ts >> 30) & 0x07) << 1) | 1,
            (ts >> 22) & 0xFF,
            (((ts >> 15) & 0x7F) << 1) | 1,
            (ts >> 7) & 0xFF,
            ((ts & 0x7F) << 1) | 1,
        ]
    )


def pes_timestamp_offsets(pkt: bytes | bytearray | memoryview, payload_offset: int) -> list[int]:
    """Byte offsets (in the packet) of the PTS and DTS fields of a PES header starting here."""
    p = payload_offset
    if p + 14 > PACKET or pkt[p] != 0 or pkt[p + 1] != 0 or pkt[p + 2] != 1:
        return []
    stream_id = pkt[p + 3]
    if stream_id in (0xBC, 0xBE, 0xBF, 0xF0, 0xF1, 0xFF, 0xF2, 0xF8):
        return []
    flags = (pkt[p + 7] >> 6) & 3
    if flags == 2:
        return [p + 9]
    if flags == 3:
        return [p + 9, p + 14]
    return []


def crc32_mpeg(data: bytes | bytearray) -> int:
    """CRC-32/MPEG-2 of PSI sections (a valid section including its CRC gives 0)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
            crc &= 0xFFFFFFFF
    return crc


@dataclass
class SectionAssembler:
    """Collects PSI sections (PAT, PMT) of one PID across packets; yields complete sections."""

    buf: bytearray = field(default_factory=bytearray)
    need: int = 0

    def push(self, pkt: bytes | bytearray | memoryview, info: TsPacket) -> list[bytes]:
        if not info.has_payload:
            return []
        payload = bytes(pkt[info.payload_offset : PACKET])
        out: list[bytes] = []
        if info.pusi:
            if not payload:
                return out
            pointer = payload[0]
            if self.buf and self.need:
                self.buf += payload[1 : 1 + pointer]
                out += self._take()
            self.buf = bytearray(payload[1 + pointer :])
            self.need = 1
        elif self.need:
            self.buf += payload
        out += self._take()
        return out

    def _take(self) -> list[bytes]:
        out: list[bytes] = []
        while len(self.buf) >= 3 and self.buf[0] != 0xFF:
            length = ((self.buf[1] & 0x0F) << 8) | self.buf[2]
            if len(self.buf) < 3 + length:
                return out
            out.append(bytes(self.buf[: 3 + length]))
            del self.buf[: 3 + length]
        if self.buf[:1] == b"\xff":
            self.buf.clear()
            self.need = 0
        return out


def parse_pat(section: bytes) -> dict[int, int]:
    """program_number -> PMT PID from a PAT section (table_id 0)."""
    length = ((section[1] & 0x0F) << 8) | section[2]
    body = section[8 : 3 + length - 4]
    out: dict[int, int] = {}
    for i in range(0, len(body) - 3, 4):
        prog, pid = struct.unpack(">HH", body[i : i + 4])
        if prog != 0:
            out[prog] = pid & 0x1FFF
    return out


def parse_pmt(section: bytes) -> tuple[int, dict[int, int]]:
    """(PCR PID, {elementary PID: stream_type}) from a PMT section (table_id 2)."""
    length = ((section[1] & 0x0F) << 8) | section[2]
    pcr_pid = ((section[8] & 0x1F) << 8) | section[9]
    info_len = ((section[10] & 0x0F) << 8) | section[11]
    i = 12 + info_len
    end = 3 + length - 4
    streams: dict[int, int] = {}
    while i + 5 <= end:
        stype = section[i]
        pid = ((section[i + 1] & 0x1F) << 8) | section[i + 2]
        es_len = ((section[i + 3] & 0x0F) << 8) | section[i + 4]
        streams[pid] = stype
        i += 5 + es_len
    return pcr_pid, streams


__all__ = [
    "DATAGRAM",
    "NULL_PID",
    "PACKET",
    "PCR_HZ",
    "PER_DATAGRAM",
    "PTS_HZ",
    "SYNC",
    "SectionAssembler",
    "TsPacket",
    "VIDEO_STREAM_TYPES",
    "crc32_mpeg",
    "decode_pcr",
    "decode_timestamp",
    "encode_pcr",
    "encode_timestamp",
    "parse_pat",
    "parse_pmt",
    "pes_timestamp_offsets",
]
