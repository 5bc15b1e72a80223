"""TS checker: the ETSI TR 101 290 priority 1 checks and the PCR checks of priority 2.

Priority 1: ``ts_sync_loss`` (1.1), ``sync_byte_error`` (1.2), ``pat_error`` (1.3: PAT missing for
more than 0.5 s, or wrong table id on PID 0), ``cc_error`` (1.4: lost, out-of-order or repeated
packets by continuity counter), ``pmt_error`` (1.5: a PMT missing for more than 0.5 s),
``pid_error`` (1.6: an elementary stream the PMT names missing for more than 5 s).
Priority 2: ``transport_error`` (2.1: TEI set), ``crc_error`` (2.2: PAT/PMT CRC),
``pcr_repetition_error`` (2.3a: PCRs more than 40 ms apart; live, measured on the stream's own
PCR clock so network jitter is not mistaken for a missing PCR -- ``pcr_arrival_max_ms`` shows it),
``pcr_discontinuity_error`` (2.3b: a PCR jump beyond 100 ms or backwards without the discontinuity
flag), ``pcr_accuracy_error`` (2.4: more than +/-500 ns off the constant-bitrate line; files only,
where byte position is the clock).

Works on a file (time = byte position at the stream's bitrate) and on a live multicast socket
(time = datagram arrival).

Example::

    report = check_file("capture.ts")
    assert report.ok, report.summary()
    report.errors["cc_error"], report.pcr_interval_max_ms   # 0, 20.0

    report = check_multicast("239.1.1.1", 5000, seconds=2, namespace="stblab-stb-a")
"""

from __future__ import annotations

import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.network import ts

PRIORITY_1 = ("ts_sync_loss", "sync_byte_error", "pat_error", "cc_error", "pmt_error", "pid_error")
PRIORITY_2 = (
    "transport_error",
    "crc_error",
    "pcr_repetition_error",
    "pcr_discontinuity_error",
    "pcr_accuracy_error",
)
PAT_PMT_MAX_S = 0.5
PID_MAX_S = 5.0
PCR_MAX_S = 0.040
PCR_JUMP_S = 0.100
PCR_ACCURACY_NS = 500


@dataclass
class TsEvent:
    """One error: when (stream seconds), what, on which PID, and details."""

    time: float
    kind: str
    pid: int | None = None
    detail: str = ""


@dataclass
class TsReport:
    """What the checker found. Truthy when no priority-1 error and no PCR error was seen."""

    packets: int = 0
    duration: float = 0.0
    bitrate: float | None = None
    pids: dict[int, int] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    events: list[TsEvent] = field(default_factory=list)
    pcr_interval_max_ms: float | None = None
    pcr_accuracy_max_ns: float | None = None
    pcr_arrival_max_ms: float | None = None  # live only: largest gap between PCR arrivals (jitter)
    pat_interval_max_s: float | None = None
    pmt_interval_max_s: float | None = None
    video_pid: int | None = None

    @property
    def ok(self) -> bool:
        return not any(self.errors[k] for k in PRIORITY_1 + PRIORITY_2)

    def __bool__(self) -> bool:
        return self.ok

    def summary(self) -> str:
        """One line for a log or an assertion message."""
        errs = ", ".join(f"{k}={v}" for k, v in sorted(self.errors.items()) if v) or "no errors"
        pcr = f"{self.pcr_interval_max_ms:.1f} ms" if self.pcr_interval_max_ms is not None else "n/a"
        return f"{self.packets} packets in {self.duration:.2f} s: {errs}; max PCR interval {pcr}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "packets": self.packets,
            "duration": round(self.duration, 3),
            "bitrate": self.bitrate,
            "ok": self.ok,
            "errors": dict(self.errors),
            "pcr_interval_max_ms": self.pcr_interval_max_ms,
            "pcr_accuracy_max_ns": self.pcr_accuracy_max_ns,
            "pcr_arrival_max_ms": self.pcr_arrival_max_ms,
            "pat_interval_max_s": self.pat_interval_max_s,
            "pmt_interval_max_s": self.pmt_interval_max_s,
            "pids": {str(k): v for k, v in sorted(self.pids.items())},
            "events": [e.__dict__ for e in self.events[:100]],
        }


class TsChecker:
    """Feed bytes (any chunking) with an optional arrival time; read :meth:`report` at any point.

    ``bitrate`` (bit/s) makes byte position the clock (files, constant bitrate); without it the
    arrival times given to :meth:`feed` are the clock.
    """

    def __init__(self, *, bitrate: float | None = None, max_events: int = 1000) -> None:
        self.bitrate = bitrate
        self.max_events = max_events
        self.r = TsReport(bitrate=bitrate)
        self._buf = bytearray()
        self._pos = 0  # bytes consumed
        self._synced = False
        self._bad_sync_run = 0
        self._t0: float | None = None
        self._now = 0.0
        self._cc: dict[int, tuple[int, bytes]] = {}
        self._dup: dict[int, int] = {}
        self._last_seen: dict[int, float] = {}
        self._sections: dict[int, ts.SectionAssembler] = {}
        self._pmt_pids: set[int] = set()
        self._es_pids: set[int] = set()
        self._last_pat: float | None = None
        self._last_pmt: dict[int, float] = {}
        self._pcr_pid: int | None = None
        self._last_pcr: tuple[int, int, float] | None = None  # (pcr, byte position, clock)
        self._pid_checked_at = 0.0

    # -- input ---------------------------------------------------------------------------------
    def feed(self, data: bytes | bytearray | memoryview, arrival: float | None = None) -> None:
        if arrival is not None and self.bitrate is None:
            if self._t0 is None:
                self._t0 = arrival
            self._now = arrival - self._t0
        self._buf += data
        buf = self._buf
        i = 0
        n = len(buf)
        while n - i >= ts.PACKET:
            if buf[i] != ts.SYNC:
                if self._synced:
                    self._event("sync_byte_error", None, f"byte 0x{buf[i]:02x} at offset {self._pos}")
                    self._bad_sync_run += 1
                    if self._bad_sync_run >= 2:
                        self._event("ts_sync_loss", None, "two or more consecutive corrupted sync bytes")
                        self._synced = False
                    if self._synced:
                        i += ts.PACKET
                        self._pos += ts.PACKET
                        continue
                # hunt for sync: 0x47 at i and i+188 (when there is enough data)
                j = buf.find(b"\x47", i + 1)
                while j != -1 and n - j > ts.PACKET and buf[j + ts.PACKET] != ts.SYNC:
                    j = buf.find(b"\x47", j + 1)
                if j == -1:
                    self._pos += n - i
                    i = n
                    break
                self._pos += j - i
                i = j
                continue
            self._synced = True
            self._bad_sync_run = 0
            self._packet(memoryview(buf)[i : i + ts.PACKET])
            i += ts.PACKET
            self._pos += ts.PACKET
        del buf[:i]

    def _clock(self) -> float:
        if self.bitrate:
            return self._pos * 8 / self.bitrate
        return self._now

    def _event(self, kind: str, pid: int | None, detail: str = "") -> None:
        self.r.errors[kind] += 1
        if len(self.r.events) < self.max_events:
            self.r.events.append(TsEvent(round(self._clock(), 4), kind, pid, detail))

    # -- per packet -----------------------------------------------------------------------------
    def _packet(self, pkt: memoryview) -> None:
        now = self._clock()
        info = ts.TsPacket.parse(pkt)
        pid = info.pid
        r = self.r
        r.packets += 1
        r.pids[pid] = r.pids.get(pid, 0) + 1
        if info.tei:
            self._event("transport_error", pid)
        self._last_seen[pid] = now
        if pid != ts.NULL_PID:
            self._continuity(pkt, info, now)
        if pid == 0:
            self._psi(pkt, info, now, pat=True)
        elif pid in self._pmt_pids:
            self._psi(pkt, info, now, pat=False)
        if info.pcr is not None and pid == (self._pcr_pid if self._pcr_pid is not None else pid):
            self._pcr(info, pid)
        if now - self._pid_checked_at >= 0.1:
            self._periodic(now)

    def _continuity(self, pkt: memoryview, info: ts.TsPacket, now: float) -> None:
        pid = info.pid
        prev = self._cc.get(pid)
        body = bytes(pkt[4:])
        if prev is not None and not info.discontinuity:
            last_cc, last_body = prev
            if info.has_payload:
                if info.cc == last_cc:
                    if body == last_body and self._dup.get(pid, 0) == 0:
                        self._dup[pid] = 1  # one duplicate is allowed
                        return
                    self._event("cc_error", pid, f"cc {info.cc} repeated")
                elif info.cc != (last_cc + 1) & 0x0F:
                    lost = (info.cc - last_cc - 1) & 0x0F
                    self._event("cc_error", pid, f"cc {last_cc} -> {info.cc} ({lost} lost or out of order)")
            elif info.cc != last_cc:
                self._event("cc_error", pid, f"cc changed to {info.cc} on a packet without payload")
        self._dup[pid] = 0
        self._cc[pid] = (info.cc, body)

    def _psi(self, pkt: memoryview, info: ts.TsPacket, now: float, *, pat: bool) -> None:
        asm = self._sections.setdefault(info.pid, ts.SectionAssembler())
        for section in asm.push(pkt, info):
            if ts.crc32_mpeg(section) != 0:
                self._event("crc_error", info.pid, "PAT" if pat else "PMT")
                continue
            if pat:
                if section[0] != 0x00:
                    self._event("pat_error", 0, f"table_id 0x{section[0]:02x} on PID 0")
                    continue
                if self._last_pat is not None and now - self._last_pat > PAT_PMT_MAX_S:
                    self._event("pat_error", 0, f"PAT interval {now - self._last_pat:.3f} s")
                self._gap("pat_interval_max_s", self._last_pat, now)
                self._last_pat = now
                self._pmt_pids = set(ts.parse_pat(section).values())
            elif section[0] == 0x02:
                last = self._last_pmt.get(info.pid)
                if last is not None and now - last > PAT_PMT_MAX_S:
                    self._event("pmt_error", info.pid, f"PMT interval {now - last:.3f} s")
                self._gap("pmt_interval_max_s", last, now)
                self._last_pmt[info.pid] = now
                pcr_pid, streams = ts.parse_pmt(section)
                self._pcr_pid = pcr_pid
                for es, stype in streams.items():
                    if es not in self._es_pids:
                        self._es_pids.add(es)
                        self._last_seen.setdefault(es, now)
                    if stype in ts.VIDEO_STREAM_TYPES and self.r.video_pid is None:
                        self.r.video_pid = es

    def _gap(self, attr: str, last: float | None, now: float) -> None:
        if last is None:
            return
        cur = getattr(self.r, attr)
        setattr(self.r, attr, max(cur or 0.0, now - last))

    def _pcr(self, info: ts.TsPacket, pid: int) -> None:
        pcr = info.pcr
        assert pcr is not None
        now = self._clock()
        if self._last_pcr is not None:
            last, last_pos, last_time = self._last_pcr
            delta = (pcr - last) / ts.PCR_HZ
            jump = not info.discontinuity and (delta < 0 or delta > PCR_JUMP_S)
            if self.bitrate:
                gap = now - last_time  # file: the byte clock of a constant-bitrate stream
            else:
                # live: the stream's own clock, so network jitter is not taken for a missing PCR
                # (a lost PCR packet still shows); arrival spacing is reported on its own
                gap = delta if 0 <= delta <= PCR_JUMP_S else now - last_time
                self.r.pcr_arrival_max_ms = max(self.r.pcr_arrival_max_ms or 0.0, (now - last_time) * 1000)
            # 2.3a: the time between two PCRs
            self.r.pcr_interval_max_ms = max(self.r.pcr_interval_max_ms or 0.0, gap * 1000)
            if gap > PCR_MAX_S:
                self._event("pcr_repetition_error", pid, f"PCR interval {gap * 1000:.1f} ms")
            if jump:
                # 2.3b: the PCR values jump beyond 100 ms or go backwards without the flag
                self._event("pcr_discontinuity_error", pid, f"PCR jumped {delta * 1000:.1f} ms")
            elif self.bitrate and not info.discontinuity:
                # 2.4: constant bitrate: the PCR must sit on the byte-position line within 500 ns
                expected = (self._pos - last_pos) * 8 / self.bitrate * ts.PCR_HZ
                off_ns = (pcr - last - expected) / ts.PCR_HZ * 1e9
                self.r.pcr_accuracy_max_ns = max(self.r.pcr_accuracy_max_ns or 0.0, abs(off_ns))
                if abs(off_ns) > PCR_ACCURACY_NS:
                    self._event("pcr_accuracy_error", pid, f"PCR off by {off_ns:.0f} ns")
        self._last_pcr = (pcr, self._pos, now)

    def _periodic(self, now: float) -> None:
        self._pid_checked_at = now
        if self._last_pat is not None and now - self._last_pat > PAT_PMT_MAX_S:
            self._event("pat_error", 0, f"no PAT for {now - self._last_pat:.2f} s")
            self._last_pat = now
        for pid, last in list(self._last_pmt.items()):
            if now - last > PAT_PMT_MAX_S:
                self._event("pmt_error", pid, f"no PMT for {now - last:.2f} s")
                self._last_pmt[pid] = now
        for pid in self._es_pids:
            last = self._last_seen.get(pid, now)
            if now - last > PID_MAX_S:
                self._event("pid_error", pid, f"PID 0x{pid:x} absent for {now - last:.1f} s")
                self._last_seen[pid] = now

    def finish(self, end_time: float | None = None) -> TsReport:
        """Close the measurement at ``end_time`` (stream seconds; default: now) and return the report."""
        now = end_time if end_time is not None else self._clock()
        if self.bitrate is None and end_time is None and self._t0 is not None:
            now = max(now, time.monotonic() - self._t0) if self._t0 > 1e6 else now
        self._periodic(now)
        self.r.duration = self._clock()
        if self._last_pat is None and self.r.packets:
            self._event("pat_error", 0, "no PAT at all")
        return self.r


def estimate_bitrate(data: bytes) -> float | None:
    """Bitrate (bit/s) of a constant-bitrate TS from its first and last PCR; None without PCRs."""
    first = last = None
    pcr_pid = None
    for off in range(0, len(data) - ts.PACKET + 1, ts.PACKET):
        if data[off] != ts.SYNC:
            continue
        info = ts.TsPacket.parse(data[off : off + ts.PACKET])
        if info.pcr is None or (pcr_pid is not None and info.pid != pcr_pid):
            continue
        pcr_pid = info.pid
        if first is None:
            first = (off, info.pcr)
        last = (off, info.pcr)
    if first is None or last is None or last[1] <= first[1]:
        return None
    return (last[0] - first[0]) * 8 * ts.PCR_HZ / (last[1] - first[1])


def check_bytes(data: bytes, *, bitrate: float | None = None) -> TsReport:
    """Check a whole stream held in memory (bitrate estimated from its PCRs when not given)."""
    rate = bitrate or estimate_bitrate(data)
    checker = TsChecker(bitrate=rate or 1.0)
    checker.feed(data)
    return checker.finish()


def check_file(path: str | Path) -> TsReport:
    """Check a recorded ``.ts`` file."""
    return check_bytes(Path(path).read_bytes())


def open_multicast(
    group: str, port: int, *, interface_ip: str = "0.0.0.0", namespace: str | None = None
) -> socket.socket:
    """A UDP socket joined to ``group`` (a real IGMP join), optionally inside a namespace."""
    from lab.network.netns import in_netns

    with in_netns(namespace):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "IP_MULTICAST_ALL"):
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_ALL, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    sock.bind((group, port))
    mreq = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton(interface_ip))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    return sock


def check_multicast(
    group: str,
    port: int,
    seconds: float,
    *,
    interface_ip: str = "0.0.0.0",
    namespace: str | None = None,
    save_to: str | Path | None = None,
) -> TsReport:
    """Join a live multicast channel for ``seconds`` and check what arrives (arrival time is the clock).

    ``save_to`` also writes the received stream to a file. A channel that sends nothing gives a
    report with ``packets == 0`` and a ``pat_error`` ("no PAT at all" is not raised for silence:
    check ``report.packets``).
    """
    sock = open_multicast(group, port, interface_ip=interface_ip, namespace=namespace)
    checker = TsChecker()
    out = open(save_to, "wb") if save_to else None  # noqa: SIM115
    start = time.monotonic()
    try:
        while True:
            left = start + seconds - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            now = time.monotonic()
            if checker._t0 is None:
                checker._t0 = start
            checker.feed(data, now)
            if out:
                out.write(data)
    finally:
        sock.close()
        if out:
            out.close()
    return checker.finish(time.monotonic() - start)


__all__ = [
    "PRIORITY_1",
    "PRIORITY_2",
    "TsChecker",
    "TsEvent",
    "TsReport",
    "check_bytes",
    "check_file",
    "check_multicast",
    "estimate_bitrate",
    "open_multicast",
]
