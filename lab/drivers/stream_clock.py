"""Frame time from the stream's own clock (MPEG-TS/RTP PTS, an MJPEG part's ``X-Timestamp``).

A live source that stamps its frames tells when each was produced; arrival times only tell when
the network and the demuxer let it through. At start-up the demuxer probes the stream and then
hands over a second of frames in one burst, so arrival times put every later edge early by the
probe time. :class:`PtsClock` maps the source clock onto ``time.monotonic()`` instead:

* frame time = ``anchor + pts``, one anchor for the whole stream, so differences of frame times
  are differences of PTS (a black segment 2 s long is 2 s long, from the first frame on);
* the anchor is the *earliest* arrival-minus-PTS of the start-up frames: frames of the burst, and
  ``settle`` seconds of frames after it, are held, then all are published with that anchor (a
  frame is never stamped later than it could have been produced; a second, smaller burst
  during start-up does not move the anchor afterwards);
* a frame that arrives *before* its mapped time (the source's clock runs fast) pulls the anchor
  back to its arrival: a small drift correction, never a jump;
* a PTS that goes back, or jumps more than ``max_jump`` seconds ahead (a new stream, a wrap, a
  splice) re-anchors at that frame's arrival, with no frames counted as missed;
* sequence numbers count frame periods of PTS, so a PTS gap of three periods is two frames
  missed: drops come from the source's clock, not from guesses about arrival jitter.

Sources without usable timestamps (the first frames all stamped 0) are reported so the caller
can fall back to arrival times (``usable`` is False).

Example::

    clock = PtsClock(fps=25)
    for stamped in clock.feed(time.monotonic(), pts_seconds, payload):
        publish(stamped.seq, stamped.time, stamped.item, missed=stamped.missed, arrival=stamped.arrival)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["PtsClock", "Stamped"]


@dataclass(frozen=True, slots=True)
class Stamped:
    """A frame ready to publish: frame time (monotonic clock), sequence number, frames missed before it."""

    time: float
    seq: int
    missed: int
    arrival: float
    pts: float
    item: Any


class PtsClock:
    """Maps a stream's PTS (seconds) onto the monotonic clock (see the module docstring)."""

    def __init__(
        self, fps: float | None, *, max_jump: float = 10.0, max_hold: float = 3.0, settle: float = 0.6
    ) -> None:
        self.fps = fps if fps and fps > 0 else None
        self.max_jump = max_jump
        self.max_hold = max_hold
        self.settle = settle
        self._settle_from: float | None = None
        self.usable: bool | None = None
        self.anchor: float | None = None
        self.reanchors = 0
        self._held: list[tuple[float, float, Any]] = []
        self._last_pts: float | None = None
        self._last_time: float | None = None
        self._seq = -1

    def feed(self, arrival: float, pts: float, item: Any) -> list[Stamped]:
        """Take one frame; returns the frames now ready (none while the start-up burst is held)."""
        if self.anchor is None:
            return self._hold(arrival, pts, item)
        return [self._stamp(arrival, pts, item)]

    def flush(self) -> list[Stamped]:
        """Publish whatever is held (the stream ended during start-up)."""
        if self.anchor is None and self._held:
            return self._release()
        return []

    def _hold(self, arrival: float, pts: float, item: Any) -> list[Stamped]:
        held = self._held
        if self.usable is None and len(held) >= 2 and all(p == pts for _, p, _ in held[-2:]):
            self.usable = False  # three frames, one timestamp: the source does not stamp frames
        held.append((arrival, pts, item))
        if self.usable is False:
            return self._release()
        period = 1.0 / self.fps if self.fps else 0.02
        if self._settle_from is None and len(held) >= 2 and arrival - held[-2][0] >= 0.5 * period:
            self._settle_from = arrival  # the burst is over: watch the arrivals settle a little longer
        settled = self._settle_from is not None and arrival - self._settle_from >= self.settle
        if settled or arrival - held[0][0] > self.max_hold or len(held) > 400:
            return self._release()
        return []

    def _release(self) -> list[Stamped]:
        held, self._held = self._held, []
        if self.usable is False:
            out = []
            for arrival, pts, item in held:
                self._seq += 1
                out.append(Stamped(arrival, self._seq, 0, arrival, pts, item))
            return out
        self.usable = True
        self.anchor = min(a - p for a, p, _ in held if not self._is_jump(p, held[0][1]))
        return [self._stamp(a, p, item) for a, p, item in held]

    def _is_jump(self, pts: float, before: float) -> bool:
        return pts < before - 1e-6 or pts - before > self.max_jump

    def _stamp(self, arrival: float, pts: float, item: Any) -> Stamped:
        assert self.anchor is not None
        missed = 0
        if self._last_pts is not None and (pts <= self._last_pts or pts - self._last_pts > self.max_jump):
            self.anchor = arrival - pts  # a new timeline: start again from this frame's arrival
            self.reanchors += 1
            self._last_pts = None
        t = self.anchor + pts
        if t > arrival:  # the frame came before it was made: the source's clock runs fast
            self.anchor = arrival - pts
            t = arrival
        if self._last_pts is not None and self.fps:
            slots = max(1, round((pts - self._last_pts) * self.fps))
            missed = slots - 1
        self._seq += 1 + missed
        if self._last_time is not None and t <= self._last_time:
            t = self._last_time + 1e-6  # frame times strictly increase
        self._last_pts, self._last_time = pts, t
        return Stamped(t, self._seq, missed, arrival, pts, item)
