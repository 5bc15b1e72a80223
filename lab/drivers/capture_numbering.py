"""Numbering live frames that carry no time of their own, from their arrival times.

A live frame is held until its successor arrives (or 1.5 frame periods pass), so a frame that was
merely late (jitter) is told from one that followed lost frames; :class:`NumberingMixin` then
numbers and publishes it into the capture's ring (see :mod:`lab.drivers.capture`).
"""

from __future__ import annotations

import collections
import math
import time
from dataclasses import dataclass

import numpy as np

from lab.drivers.capture_base import CaptureBase


class _SeqClock:
    """Numbers live frames by the source's frame slots, from arrival times at a known frame rate.

    Network delay only ever makes frames late, so the earliest arrivals (the lower envelope of
    ``t - seq / fps`` over recent frames) mark where the slots are. A frame arriving well past the
    next free slot means the source produced frames in between that never reached us.
    """

    def __init__(self, fps: float | None) -> None:
        self.fps = fps if fps and fps > 0 else None
        self.last: int | None = None
        self._offsets: collections.deque[float] = collections.deque(maxlen=64)

    def next(self, t: float) -> tuple[int, int]:
        """(sequence number, frames missed before it) for a frame that arrived at ``t``."""
        if self.last is None:
            seq, missed = 0, 0
        elif self.fps is None or not self._offsets:
            seq, missed = self.last + 1, 0
        else:
            slots = (t - min(self._offsets)) * self.fps
            missed = max(0, math.floor(slots - (self.last + 1) + 0.25))
            seq = self.last + 1 + missed
        if self.fps is not None:
            self._offsets.append(t - seq / self.fps)
        self.last = seq
        return seq, missed


@dataclass
class _Grab:
    """A live frame waiting for its successor before it is numbered and published."""

    t: float
    jpeg: bytes
    image: np.ndarray | None
    width: int
    height: int
    clock: _SeqClock
    base_seq: int


class NumberingMixin(CaptureBase):
    """The capture's publishing side: hold, number and publish frames into the ring."""

    # A live frame is published when the next one arrives (or 1.5 frame periods later): its
    # successor tells a frame that was merely late (jitter) from one that followed lost frames.
    # Frames arriving back to back (a burst after a stall: late, not lost) wait for the first
    # frame after the burst, which shows where the frame slots really are.

    def _hand_over(self, grab: _Grab) -> None:
        with self._pend_cond:
            fps = grab.clock.fps
            if fps is None:  # no rate known: nothing to count, publish at once
                self._publish_pending(None)
                self._pending = [grab]
                self._publish_pending(None)
                return
            if self._pending and grab.t - self._pending[-1].t >= 0.5 / fps:
                self._publish_pending(grab.t)
            self._pending.append(grab)
            if grab.t - self._pending[0].t > 3.0 / fps:  # a source faster than fps_hint: never hold long
                self._publish_pending(None)
            self._pend_cond.notify_all()

    def _flush(self) -> None:
        with self._pend_cond:
            self._publish_pending(None)

    def _publisher(self) -> None:
        with self._pend_cond:
            while not self._stop.is_set():
                if not self._pending or self._pending[-1].clock.fps is None:
                    self._pend_cond.wait(0.5)
                    continue
                last = self._pending[-1]
                left = last.t + 1.5 / last.clock.fps - time.monotonic()  # type: ignore[operator]
                if left > 0:
                    self._pend_cond.wait(left)
                    continue
                self._publish_pending(None)

    def _publish_pending(self, next_t: float | None) -> None:
        """Number and publish the waiting frames; ``next_t`` is the arrival of the frame after them.

        A frame's slot time is the earliest of its own arrival and each later arrival less the
        frame periods between them: a frame that only came late lines up with its successors.
        """
        pend, self._pending = self._pending, []
        arrivals = [g.t for g in pend] + ([next_t] if next_t is not None else [])
        for j, g in enumerate(pend):
            when = g.t
            if g.clock.fps:
                period = 1.0 / g.clock.fps
                when = min(arrivals[j + i] - i * period for i in range(len(arrivals) - j))
            seq, missed = g.clock.next(when)
            self._publish(seq + g.base_seq, g.t, g.jpeg, g.image, g.width, g.height, missed)

    def _publish(
        self,
        seq: int,
        t: float,
        jpeg: bytes,
        image: np.ndarray | None,
        width: int,
        height: int,
        missed: int,
        arrival: float | None = None,
    ) -> None:
        entry = self.ring.add(seq, t, jpeg, width, height, arrival)
        if image is not None:
            self._remember(entry.seq, image)
        with self._cond:
            self.frames_received += 1
            self.dropped += missed
            self._last_frame_at = time.monotonic()
            self._cond.notify_all()
