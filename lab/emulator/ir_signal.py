"""The emulated box's IR hardware: the receiver (its IR eye) and an emitter (an IR LED).

* :class:`IrReceiver` -- the box's IR eye. It decodes pulse/space timings with the remote's
  protocol from its lircd.conf (:mod:`lab.lircd`) and calls ``on_key(key)`` for each press, and
  again for auto-repeats while a key is held (after ``repeat_delay``, as Linux rc-core does).
  Timings that do not decode are noise: ignored, counted, and they end a held key.
* :class:`IrEmitter` -- an IR LED: plays frames in real time (a NEC press takes ~110 ms) and
  hands each frame to the receiver it points at (or to nobody, for an emitter not stuck on a box).

The lircd and iTach servers (:mod:`lab.emulator.ir_lircd`, :mod:`lab.emulator.ir_itach`) drive an
:class:`IrEmitter` pointed at the box's :class:`IrReceiver`.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.lircd import Remote, load_remotes

log = logging.getLogger(__name__)

KeyCallback = Callable[[str], None]
RemotesArg = Remote | Sequence[Remote] | str | os.PathLike[str]

#: A space this long (µs) or longer ends a frame when a signal is played out frame by frame.
FRAME_SPLIT_US = 15_000
#: Silence assumed after a signal that ends on a pulse (µs).
DEFAULT_TAIL_US = 20_000


def as_remotes(remotes: RemotesArg) -> list[Remote]:
    """A list of remotes from a Remote, a sequence of them, or a lircd.conf path."""
    if isinstance(remotes, Remote):
        return [remotes]
    if isinstance(remotes, str | os.PathLike):
        return load_remotes(Path(remotes))
    found = list(remotes)
    if not found:
        raise ValueError("at least one remote is needed")
    return found


def split_frames(timings: Sequence[int]) -> list[tuple[list[int], int]]:
    """Split a pulse/space list into ``(marks, gap_us)`` frames at long spaces.

    ``marks`` starts and ends with a pulse; ``gap_us`` is the silence after it.

    >>> split_frames([9000, 4500, 560, 40000, 9000, 2250, 560])
    [([9000, 4500, 560], 40000), ([9000, 2250, 560], 20000)]
    """
    frames: list[tuple[list[int], int]] = []
    cur: list[int] = []
    for i, v in enumerate(timings):
        if i % 2 == 1 and v >= FRAME_SPLIT_US:
            if cur:
                frames.append((cur, int(v)))
            cur = []
        else:
            cur.append(int(v))
    if cur:
        if len(cur) % 2 == 0:  # ends on a (short) space: that is the tail
            frames.append((cur[:-1], max(cur[-1], DEFAULT_TAIL_US)))
        else:
            frames.append((cur, DEFAULT_TAIL_US))
    return frames


@dataclass(frozen=True)
class IrEvent:
    """One key event the receiver produced: ``repeat`` is True for a held-key auto-repeat."""

    time: float
    key: str
    remote: str
    repeat: bool


class IrReceiver:
    """The box's IR receiver: timings -> key presses (see module docstring).

    ``repeat_delay`` is how long a key must be held before auto-repeat starts, ``repeat_period``
    the minimum time between auto-repeats. Thread-safe: several emitters may shine on it.
    """

    def __init__(
        self,
        remotes: RemotesArg,
        on_key: KeyCallback | None = None,
        *,
        repeat_delay: float = 0.5,
        repeat_period: float = 0.1,
        hold_timeout: float = 0.2,
    ) -> None:
        self.remotes = as_remotes(remotes)
        self.on_key = on_key
        self.repeat_delay = repeat_delay
        self.repeat_period = repeat_period
        self.hold_timeout = hold_timeout
        self.events: collections.deque[IrEvent] = collections.deque(maxlen=256)
        self.frames = 0  # frames seen
        self.noise = 0  # frames that decoded to nothing
        self._lock = threading.RLock()
        self._held: tuple[Remote, str, int | None] | None = None
        self._held_since = 0.0
        self._last_seen = -1e9
        self._last_emit = 0.0

    def keys(self) -> list[str]:
        """Keys received so far (oldest first, auto-repeats included), from :attr:`events`."""
        return [e.key for e in self.events]

    def receive(self, timings: Sequence[int], start: float | None = None) -> list[str]:
        """Decode a burst of timings (one or more frames) that began at monotonic ``start``.

        Returns the keys emitted (presses and auto-repeats), in order.
        """
        t = time.monotonic() if start is None else start
        emitted: list[str] = []
        for marks, gap in split_frames(timings):
            emitted += self.frame(marks, t)
            t += (sum(marks) + gap) / 1e6
        return emitted

    def frame(self, marks: Sequence[int], start: float) -> list[str]:
        """Decode one frame (pulses and spaces, no trailing gap) that began at ``start``."""
        with self._lock:
            self.frames += 1
            end = start + sum(marks) / 1e6
            held_recent = self._held is not None and start - self._last_seen <= self.hold_timeout
            if not held_recent:
                self._held = None
            for remote in self._candidates():
                try:
                    found = remote.decode_all(marks)
                except Exception:  # a decoder bug must not blind the box
                    log.exception("ir: decoding with remote %s failed", remote.name)
                    continue
                if not found:
                    continue
                out = self._apply(remote, found, start, end)
                if out is not None:
                    return out
            self.noise += 1
            self._held = None  # noise breaks a held key, as on a real receiver
            return []

    def _candidates(self) -> list[Remote]:
        if self._held is None:
            return self.remotes
        held_remote = self._held[0]
        return [held_remote] + [r for r in self.remotes if r is not held_remote]

    def _apply(self, remote: Remote, found: list[Any], start: float, end: float) -> list[str] | None:
        emitted: list[str] = []
        useful = False
        for d in found:
            if d.key is None:  # repeat frame(s): the held key continues
                if self._held is None or self._held[0] is not remote:
                    continue
                useful = True
                emitted += self._repeats(d.repeats, end)
                continue
            useful = True
            held = self._held
            same = held is not None and held[0] is remote and held[1] == d.key
            if same and held is not None and not remote.has_repeat_code and (d.toggle is None or d.toggle == held[2]):
                # Remotes without a repeat code (RC-5, many others) resend the full frame while held.
                emitted += self._repeats(1 + d.repeats, end)
                continue
            self._held = (remote, d.key, d.toggle)
            self._held_since = start
            self._last_emit = start
            emitted.append(self._emit(remote, d.key, start, repeat=False))
            if d.repeats:
                emitted += self._repeats(d.repeats, end)
        if not useful:
            return None
        self._last_seen = end
        return emitted

    def _repeats(self, count: int, at: float) -> list[str]:
        assert self._held is not None
        remote, key, _ = self._held
        out: list[str] = []
        for _ in range(count):
            if at - self._held_since >= self.repeat_delay and at - self._last_emit >= self.repeat_period * 0.8:
                self._last_emit = at
                out.append(self._emit(remote, key, at, repeat=True))
        return out

    def _emit(self, remote: Remote, key: str, at: float, *, repeat: bool) -> str:
        self.events.append(IrEvent(at, key, remote.name, repeat))
        if self.on_key is not None:
            try:
                self.on_key(key)
            except Exception:  # the box's handler failing must not kill the IR path
                log.exception("ir: on_key(%s) failed", key)
        return key


class _Segment:
    """Frames queued on an emitter, with callbacks for when they are done (or aborted)."""

    def __init__(self, frames: Iterator[tuple[list[int], int]], done: Callable[[bool], None] | None, tag: object):
        self.frames = frames
        self.callbacks: list[Callable[[bool], None]] = [done] if done is not None else []
        self.tag = tag
        self.stop_requested = False
        self.exhausted = False
        self.finished = threading.Event()
        self.completed = False
        self._lock = threading.Lock()

    def next_frame(self) -> tuple[list[int], int] | None:
        """The next frame to send, or None when the segment is exhausted."""
        with self._lock:
            frame = next(self.frames, None)
            if frame is None:
                self.exhausted = True
            return frame

    def extend(self, frames: Iterable[tuple[list[int], int]], done: Callable[[bool], None] | None = None) -> bool:
        """Append frames while the segment plays; False (nothing appended) once it has run out."""
        with self._lock:
            if self.exhausted or self.stop_requested:
                return False
            self.frames = itertools.chain(self.frames, frames)
            if done is not None:
                self.callbacks.append(done)
            return True

    def finish(self, completed: bool) -> None:
        """Mark done and run the callbacks (once)."""
        if self.finished.is_set():
            return
        self.completed = completed
        self.finished.set()
        for cb in self.callbacks:
            try:
                cb(completed)
            except Exception:
                log.exception("ir: completion callback failed")


class IrEmitter:
    """An IR LED that plays frames in real time towards a receiver (or into the room).

    Segments play one after the other; :meth:`stop` aborts the playing segment at the next frame
    boundary (as iTach ``stopir`` and lircd ``SEND_STOP`` do).
    """

    def __init__(self, receiver: IrReceiver | None, name: str = "ir") -> None:
        self.receiver = receiver
        self.name = name
        self._cond = threading.Condition()
        self._queue: collections.deque[_Segment] = collections.deque()
        self._current: _Segment | None = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ir-emitter-{name}", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> _Segment | None:
        """The segment playing or queued first (None when idle)."""
        with self._cond:
            return self._current or (self._queue[0] if self._queue else None)

    def play(
        self,
        frames: Iterable[tuple[list[int], int]],
        done: Callable[[bool], None] | None = None,
        tag: object = None,
    ) -> _Segment:
        """Queue frames; ``done(completed)`` is called when they have been sent or were stopped."""
        seg = _Segment(iter(frames), done, tag)
        with self._cond:
            if self._closed.is_set():
                raise RuntimeError("emitter closed")
            self._queue.append(seg)
            self._cond.notify_all()
        return seg

    def stop(self, tag: object = None) -> bool:
        """Abort the playing segment (only if its tag matches, when given) and queued ones."""
        with self._cond:
            stopped = False
            for seg in [self._current, *self._queue]:
                if seg is not None and (tag is None or seg.tag == tag):
                    seg.stop_requested = True
                    stopped = True
            self._cond.notify_all()
            return stopped

    def close(self) -> None:
        """Stop playing and end the emitter's thread."""
        self._closed.set()
        self.stop()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while not self._closed.is_set():
            with self._cond:
                while not self._queue and not self._closed.is_set():
                    self._cond.wait()
                if self._closed.is_set():
                    break
                seg = self._current = self._queue.popleft()
            completed = self._play(seg)
            with self._cond:
                self._current = None
            seg.finish(completed)
        with self._cond:
            leftovers = list(self._queue)
            self._queue.clear()
        for seg in leftovers:
            seg.finish(False)

    def _play(self, seg: _Segment) -> bool:
        t = time.monotonic()
        first = True
        while True:
            if seg.stop_requested or self._closed.is_set():
                return False
            frame = seg.next_frame()
            if frame is None:
                return True  # the silence after the last frame needs no waiting
            marks, gap = frame
            if not first and self._sleep_until(t, seg):  # the gap before this frame
                return False
            first = False
            # Signal time, not wall time: an emulator starved of CPU delivers late but keeps the
            # signal's own timing, so hold and repeat decisions do not depend on machine load.
            start = t
            t = start + sum(marks) / 1e6
            if self._sleep_until(t, seg):
                return False
            if self.receiver is not None:
                self.receiver.frame(marks, start)
            t += gap / 1e6

    def _sleep_until(self, t: float, seg: _Segment) -> bool:
        """Sleep until monotonic ``t``; True when the segment was stopped meanwhile."""
        while True:
            left = t - time.monotonic()
            if left <= 0:
                return seg.stop_requested or self._closed.is_set()
            with self._cond:
                if seg.stop_requested or self._closed.is_set():
                    return True
                self._cond.wait(left)


__all__ = [
    "DEFAULT_TAIL_US",
    "FRAME_SPLIT_US",
    "IrEmitter",
    "IrEvent",
    "IrReceiver",
    "KeyCallback",
    "RemotesArg",
    "as_remotes",
    "split_frames",
]
