"""The one waiting engine under every video wait (match, motion, black, freeze, text, any predicate).

A wait feeds each frame of a source to a *step* (a function of one frame returning a check
result or any truthy value) until the step has been truthy for ``consecutive`` frames and
``stable_secs`` of frame time, or until ``timeout_secs`` of *frame time* (capture timestamps or
stream PTS, never wall time) have passed since the first frame or since ``since``.

How a wait ends is decided here, in one place:

* seen: the deciding result (the first frame of the run that satisfied it), truthy;
* not seen, and the capture delivered the frames: :class:`~lab.video.result.VideoCheckFailed`
  (a DeviceFault) carrying the deciding result and its frame, the frames seen and dropped;
  ``check=False`` returns the falsy result instead;
* not seen, but the capture itself failed -- it is lost (InfraError from the driver), its clock
  stuck, or it dropped more than ``max_dropped`` of the frames the source produced during the
  wait (a busy host or an overloaded encoder: what the box showed was not watched) --
  :class:`~lab.errors.InfraError` naming the rig and the ``video`` instrument, never a fault.

Example::

    result = wait(lambda f: match(ref, f), capture, timeout_secs=5, what="channel logo")
    result = wait(is_black, capture, timeout_secs=3, stable_secs=1, check=False)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lab.errors import InfraError
from lab.video.frame import Frame
from lab.video.result import CheckResult, VideoCheckFailed
from lab.video.source import FileSource, check_frame, iterate

EPS = 1e-6  # frame times are sums of float periods: 42/25 - 17/25 must count as 1.0 s
MAX_DROPPED = 0.25  # above this fraction of frames lost, a failed wait is the capture's fault


class Watch:
    """Bookkeeping shared by the waiters: frame-time deadline, frames seen, seq gaps, wall guard."""

    def __init__(self, source: Any, timeout_secs: float, rig: str | None, since: float | None = None) -> None:
        if timeout_secs < 0:
            raise ValueError(f"timeout_secs must not be negative: {timeout_secs}")
        self.source, self.timeout, self.rig, self.since = source, float(timeout_secs), rig, since
        self.frames = 0
        self.dropped = 0
        self.start: float | None = None
        self.first: Frame | None = None
        self.last: Frame | None = None
        self._source_dropped0 = _counter(source, "dropped")
        self._consumer_dropped0 = _counter(source, "consumer_dropped")
        self.live = not isinstance(source, FileSource | list | tuple | str | Path) and hasattr(source, "frames")
        self._wall_limit = 3 * timeout_secs + 10 if self.live else None
        self._wall0 = time.monotonic()
        self.ended = False

    def __iter__(self) -> Iterator[Frame]:
        for item in iterate(self.source, self.timeout + 1.0, self.since):
            frame = check_frame(item, self.rig)
            if self.since is not None and frame.time < self.since - EPS:
                continue  # from before the moment the caller asked about
            if self.last is not None and frame.seq > self.last.seq + 1:
                self.dropped += frame.seq - self.last.seq - 1
            if self.start is None:
                self.start = frame.time if self.since is None else self.since
                self.first = frame
            self.frames += 1
            self.last = frame
            yield frame
            if frame.time - self.start >= self.timeout - EPS:
                return
            if self._wall_limit is not None and time.monotonic() - self._wall0 > self._wall_limit:
                raise InfraError(
                    f"video frames' time advanced only {frame.time - self.start:.1f} s in "
                    f"{time.monotonic() - self._wall0:.1f} s of wall time; the capture clock is stuck",
                    rig=self.rig,
                    instrument="video",
                )
        self.ended = True

    def elapsed(self) -> float:
        return 0.0 if self.start is None or self.last is None else self.last.time - self.start

    def lost_fraction(self) -> float:
        """Fraction of the frames the source produced during the wait that the wait never saw."""
        total = self.frames + self.dropped
        return self.dropped / total if total else 0.0

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {"frames": self.frames, "dropped": self.dropped, "elapsed": round(self.elapsed(), 6)}
        now = _counter(self.source, "dropped")
        if now is not None and self._source_dropped0 is not None:
            out["source_dropped"] = now - self._source_dropped0
        consumer = _counter(self.source, "consumer_dropped")
        if consumer is not None and self._consumer_dropped0 is not None:
            out["consumer_dropped"] = consumer - self._consumer_dropped0
        if self.ended and self.elapsed() < self.timeout - EPS:
            out["why"] = "source ended"
        elif self.frames == 0:
            out["why"] = "no frames"
        return out

    def judge_failure(self, what: str, *, max_dropped: float = MAX_DROPPED) -> None:
        """Before a wait that did not see ``what`` is blamed on the box: raise InfraError when the
        capture is to blame (lost, or it dropped more than ``max_dropped`` of the frames)."""
        raise_if_capture_lost(self.source, self.rig, ended_early=self.live and self.ended)
        if self.frames and self.lost_fraction() > max_dropped:
            raise InfraError(
                f"{what}: not seen, but the capture dropped {self.dropped} of {self.frames + self.dropped} "
                f"frames during the wait ({self.lost_fraction():.0%}); the picture was not watched",
                rig=self.rig,
                instrument="video",
            )


def raise_if_capture_lost(source: Any, rig: str | None, *, ended_early: bool = False) -> None:
    """InfraError when ``source`` is a capture whose instrument is lost.

    When a live capture stopped delivering before the wait's deadline, it is given its own
    ``lost_after`` seconds to tell a lost instrument (InfraError) from a box that shows no picture
    (which stays the box's fault).
    """
    if not hasattr(source, "signal"):
        return
    if ended_early:
        deadline = time.monotonic() + float(getattr(source, "lost_after", 0.0) or 0.0)
        while str(source.signal) not in ("signal", "lost") and time.monotonic() < deadline:
            waiter = getattr(source, "wait_state_change", None)
            if callable(waiter):
                waiter(0.25)
            else:
                time.sleep(0.25)  # bounded by lost_after: polling the instrument's state, not synchronising
    if str(source.signal) == "lost":
        why = getattr(source, "last_error", "") or "instrument unreachable"
        raise InfraError(f"capture lost: {why}", rig=rig or getattr(source, "rig_name", None), instrument="video")


def _counter(source: Any, name: str) -> int | None:
    value = getattr(source, name, None)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class WaitResult(CheckResult):
    """Result of a predicate wait: ``value`` is what the predicate returned on the deciding frame."""

    value: Any = None

    @property
    def symptom(self) -> str:
        inner = self.value
        if isinstance(inner, CheckResult):
            return inner.symptom
        return "condition" if self.ok else "condition-not-met"


def as_result(value: Any, frame: Frame) -> CheckResult:
    """A step's return value as a check result (a bare bool or object becomes a :class:`WaitResult`)."""
    if isinstance(value, CheckResult):
        return value
    out = WaitResult("wait_until", bool(value), frame, None, float(bool(value)))
    out.value = value
    return out


def wait(
    step: Callable[[Frame], Any],
    source: Any,
    *,
    timeout_secs: float,
    what: str,
    stable_secs: float = 0.0,
    consecutive: int = 1,
    since: float | None = None,
    rig: str | None = None,
    symptom: str | None = None,
    check: bool = True,
    better: Callable[[CheckResult, CheckResult], bool] | None = None,
    max_dropped: float = MAX_DROPPED,
    wrap: Callable[[CheckResult, Any], CheckResult] | None = None,
) -> CheckResult:
    """Run ``step`` on each frame until it holds (see the module docstring); the deciding result.

    ``stable_secs`` extends the budget: the condition must start within ``timeout_secs`` and hold
    that long. ``better(candidate, kept)`` picks which falsy result is kept as the evidence of a
    failure (default: the last one); ``wrap(result, raw)`` builds the returned result from the
    step's (used by :func:`~lab.video.wait.wait_until` to keep the predicate's value).
    """
    if consecutive < 1:
        raise ValueError(f"consecutive must be at least 1, not {consecutive}")
    if stable_secs < 0:
        raise ValueError(f"stable_secs must not be negative: {stable_secs}")
    watch = Watch(source, timeout_secs + stable_secs, rig, since)
    first: CheckResult | None = None  # first result of the current truthy run
    run = 0
    kept: CheckResult | None = None
    for frame in watch:
        raw = step(frame)
        result = as_result(raw, frame) if wrap is None else wrap(as_result(raw, frame), raw)
        if result:
            if first is None:
                if watch.start is not None and frame.time - watch.start > timeout_secs + EPS:
                    break  # became true too late to hold for stable_secs within the budget
                first = result
            run += 1
            held = frame.time - (first.time or 0.0)
            if run >= consecutive and held >= stable_secs - EPS:
                deciding = first if stable_secs > 0 else result
                deciding.details.update(watch.details())
                if stable_secs > 0:
                    deciding.details["stable_for"] = round(held, 6)
                return deciding
        else:
            first, run = None, 0
            if kept is None or better is None or better(result, kept):
                kept = result
    if kept is None:  # truthy to the end but not for long enough, or no frame at all
        kept = first or CheckResult("wait", False, watch.last, None, 0.0)
    kept.ok = False
    kept.details.update(watch.details())
    if check:
        watch.judge_failure(what, max_dropped=max_dropped)
        raise failure(what, kept, watch, timeout_secs, rig=rig, symptom=symptom)
    return kept


def failure(
    what: str, result: CheckResult, watch: Watch, timeout_secs: float, *, rig: str | None, symptom: str | None
) -> VideoCheckFailed:
    """The DeviceFault a wait raises when ``what`` was not seen in time."""
    d = watch.details()
    if watch.frames == 0:
        symptom = "no-signal"  # no picture at all, from a capture that answers
    why = f"; {d['why']}" if "why" in d else ""
    message = (
        f"{what} not seen within {timeout_secs:g} s of frame time "
        f"({d['frames']} frames seen, {d['dropped']} dropped{why})"
    )
    return VideoCheckFailed(message, result, rig=rig, symptom=symptom)
