"""The impairment decisions of a profile, per packet, with a seeded RNG (no I/O here).

The same engine drives the userspace bridge and the accuracy benchmark, so what a profile means
is defined once. Order per packet, as netem does it: outage -> loss (random, then Gilbert-Elliott)
-> duplicate -> corrupt -> reorder (sent now) or delay +/- jitter -> rate (serialised on a link of
``rate`` kbit/s with a queue of ``queue`` packets, tail drop). Random draws come from one seeded
RNG per flow, so a seed replays the same losses on a stream whatever else shares the link.

Example::

    eng = Impairment(load_profile("lossy-2pct"), seed_salt="down", start=time.monotonic())
    for due, data in eng.process(frame, now):   # zero, one or two copies
        schedule(due, data)
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from lab.network.profile import Profile

#: Ethernet + IPv4 + UDP headers: corruption flips a bit after these, so it reaches the application.
_L4_PAYLOAD = 14 + 20 + 8


@dataclass
class Impairment:
    """One direction of a shaped link."""

    profile: Profile
    seed_salt: str = ""
    start: float = 0.0
    counters: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        # one RNG (and Gilbert-Elliott state) per flow: background chatter (ARP, IGMP) on the link
        # does not shift the draws of the stream under test, so a seed replays the same losses
        self._rngs: dict[bytes, random.Random] = {}
        self._bad_by_flow: dict[bytes, bool] = {}
        self.rng = random.Random(f"{self.profile.seed}:{self.seed_salt}")
        self._bad = False
        self._link_free = 0.0
        self._in_queue: list[float] = []  # departure times of packets still queued (rate only)
        p = self.profile
        self._loss = p.loss / 100.0
        self._dup = p.duplicate / 100.0
        self._corrupt = p.corrupt / 100.0
        self._reorder = p.reorder / 100.0
        self._delay = p.delay / 1000.0
        self._jitter = p.jitter / 1000.0
        self._rate = p.rate * 1000.0 if p.rate else None  # bit/s
        self._outages = [(o.start, o.start + o.duration) for o in p.outages]
        self._key = b""

    def in_outage(self, now: float) -> bool:
        """True while one of the profile's outage windows is open."""
        t = now - self.start
        return any(a <= t < b for a, b in self._outages)

    def _flow(self, data: bytes) -> None:
        """Select the RNG and burst state of the frame's flow: EtherType, and for IPv4 the protocol,
        destination address and port (the source port of a sender is often ephemeral)."""
        key = data[12:14] + data[23:24] + data[30:34] + data[36:38] if data[12:14] == b"\x08\x00" else data[12:14]
        rng = self._rngs.get(key)
        if rng is None:
            rng = self._rngs[key] = random.Random(f"{self.profile.seed}:{self.seed_salt}:{key.hex()}")
        self._bad_by_flow[self._key] = self._bad
        self._key = key
        self.rng = rng
        self._bad = self._bad_by_flow.get(key, False)

    def _lost(self) -> bool:
        rng = self.rng
        if self._loss and rng.random() < self._loss:
            return True
        ge = self.profile.burst
        if ge is not None:
            if self._bad:
                if rng.random() < ge.r / 100.0:
                    self._bad = False
            elif rng.random() < ge.p / 100.0:
                self._bad = True
            survive = (ge.h if self._bad else ge.k) / 100.0
            if rng.random() >= survive:
                self.counters["lost_burst"] += 1
                return True
        return False

    def process(self, data: bytes, now: float) -> list[tuple[float, bytes]]:
        """Decide the fate of one frame arriving at ``now``: a list of (departure time, bytes)."""
        c = self.counters
        c["received"] += 1
        if self._outages and self.in_outage(now):
            c["dropped_outage"] += 1
            return []
        self._flow(data)
        if self._lost():
            c["dropped_loss"] += 1
            return []
        rng = self.rng
        copies = 2 if self._dup and rng.random() < self._dup else 1
        if copies == 2:
            c["duplicated"] += 1
        out: list[tuple[float, bytes]] = []
        for _ in range(copies):
            frame = data
            if self._corrupt and rng.random() < self._corrupt and len(frame) > _L4_PAYLOAD:
                frame = _flip_bit(frame, rng)
                c["corrupted"] += 1
            if self._reorder and rng.random() < self._reorder:
                due = now
                c["reordered"] += 1
            else:
                due = now + self._delay
                if self._jitter:
                    due += rng.uniform(-self._jitter, self._jitter)
            if self._rate:
                q = self._in_queue
                while q and q[0] <= now:
                    q.pop(0)
                if len(q) >= self.profile.queue:
                    c["dropped_queue"] += 1
                    continue
                start = max(due, self._link_free)
                self._link_free = start + len(frame) * 8 / self._rate
                due = self._link_free
                q.append(due)
            out.append((due, frame))
        c["sent"] += len(out)
        return out


def _flip_bit(frame: bytes, rng: random.Random) -> bytes:
    """Flip one bit of the L4 payload; zero the UDP checksum (legal for IPv4) so it is delivered."""
    buf = bytearray(frame)
    i = rng.randrange(_L4_PAYLOAD, len(buf))
    buf[i] ^= 1 << rng.randrange(8)
    if buf[12:14] == b"\x08\x00" and buf[23] == 17:  # IPv4 / UDP
        ihl = (buf[14] & 0x0F) * 4
        buf[14 + ihl + 6 : 14 + ihl + 8] = b"\x00\x00"
    return bytes(buf)


__all__ = ["Impairment"]
