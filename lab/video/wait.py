"""Waiters: watch a frame source until something is seen, in frame time.

Timeouts are measured in the frames' own time (capture timestamps or stream PTS), not wall time,
from the first frame seen or from ``since`` (a time on the frames' clock, e.g. when a key was
pressed: frames from before it are skipped, and the capture driver replays the ones since then),
so a loaded lab host that delivers frames late does not shorten a wait, and an offline clip is
judged as the subscriber saw it. Every waiter returns the result of the frame that decided it
(truthy on success, falsy at the timeout) with ``details`` giving ``frames`` seen, ``dropped``
frames (gaps in ``seq``: frames the source produced that the waiter never saw), ``elapsed``
frame time and, for a source that counts them (the capture driver does), ``source_dropped``
(frames the source never delivered) and ``consumer_dropped`` (frames skipped because the waiter
fell behind).

Example::

    assert wait_for_match("logo-ch5.png", capture, timeout_secs=5)
    assert wait_for_motion(capture, mask=~Mask(banner), consecutive="10/20")
    result = wait_until(lambda f: not is_black(f), capture, timeout_secs=30, stable_secs=2)
    t = detect_transition(lambda: remote.press("KEY_MENU"), capture, stable_secs=1.0)
    print(t.details["animation_start"] - t.details["press_time"], t.details["duration"])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lab.errors import InfraError
from lab.video.frame import Frame
from lab.video.match import MatchParameters, MatchResult, Template, as_template, match
from lab.video.motion import DEFAULT_MIN_SIZE, DEFAULT_NOISE_THRESHOLD, MotionDetector, MotionResult, _Comparer
from lab.video.region import MaskLike, Region
from lab.video.result import CheckResult
from lab.video.source import FileSource, check_frame, iterate

EPS = 1e-6  # frame times are sums of float periods: 42/25 - 17/25 must count as 1.0 s


class WaitResult(CheckResult):
    """Result of :func:`wait_until`: ``value`` is what the predicate returned on the deciding frame."""

    value: Any = None

    @property
    def symptom(self) -> str:
        inner = self.value
        if isinstance(inner, CheckResult):
            return inner.symptom
        return "condition" if self.ok else "condition-not-met"


class TransitionResult(CheckResult):
    """Result of :func:`detect_transition`; ``details`` hold ``press_time``, ``animation_start``,
    ``end_time``, ``duration`` (press to settled) and ``animation_duration`` (start to settled)."""

    @property
    def symptom(self) -> str:
        return "transition" if self.ok else f"transition-{self.details.get('why', 'failed')}"


class _Watch:
    """Bookkeeping shared by the waiters: frame-time deadline, frames seen, seq gaps, wall guard."""

    def __init__(self, source: Any, timeout_secs: float, rig: str | None, since: float | None = None) -> None:
        if timeout_secs < 0:
            raise ValueError(f"timeout_secs must not be negative: {timeout_secs}")
        self.source, self.timeout, self.rig, self.since = source, float(timeout_secs), rig, since
        self.frames = 0
        self.dropped = 0
        self.start: float | None = None
        self.last: Frame | None = None
        self._source_dropped0 = _source_dropped(source)
        consumer = getattr(source, "consumer_dropped", None)
        self._consumer_dropped0 = consumer if isinstance(consumer, int) else None
        self._wall_limit = None if isinstance(source, FileSource | list | tuple | str | Path) else 3 * timeout_secs + 10
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

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {"frames": self.frames, "dropped": self.dropped, "elapsed": round(self.elapsed(), 6)}
        now = _source_dropped(self.source)
        if now is not None and self._source_dropped0 is not None:
            out["source_dropped"] = now - self._source_dropped0
        consumer = getattr(self.source, "consumer_dropped", None)
        if isinstance(consumer, int) and self._consumer_dropped0 is not None:
            out["consumer_dropped"] = consumer - self._consumer_dropped0
        if self.ended and self.elapsed() < self.timeout:
            out["why"] = "source ended"
        elif self.frames == 0:
            out["why"] = "no frames"
        return out


def _source_dropped(source: Any) -> int | None:
    value = getattr(source, "dropped", None)
    return int(value) if isinstance(value, int | float) else None


def wait_for_match(
    reference: Template | np.ndarray | str | Path,
    source: Any,
    *,
    timeout_secs: float = 10.0,
    region: Region = Region.ALL,
    mask: MaskLike | None = None,
    params: MatchParameters | None = None,
    consecutive: int = 1,
    since: float | None = None,
    rig: str | None = None,
) -> MatchResult:
    """Wait until ``reference`` matches (``consecutive`` frames in a row); returns the deciding frame's result.

    Falsy at the timeout, carrying the best-scoring non-match seen (for the evidence PNG).
    """
    template = as_template(reference, mask)
    watch = _Watch(source, timeout_secs, rig, since)
    best: MatchResult | None = None
    run = 0
    for frame in watch:
        result = match(template, frame, region=region, params=params)
        run = run + 1 if result else 0
        if result and run >= consecutive:
            result.details.update(watch.details())
            return result
        if best is None or result.score >= best.score:
            best = result
    if best is None:
        best = MatchResult("match", False, None, None, 0.0, {"reference": template.name})
    best.ok = False
    best.details.update(watch.details())
    return best


def wait_for_motion(
    source: Any,
    *,
    timeout_secs: float = 10.0,
    region: Region = Region.ALL,
    mask: MaskLike | None = None,
    noise_threshold: int = DEFAULT_NOISE_THRESHOLD,
    min_size: tuple[int, int] = DEFAULT_MIN_SIZE,
    consecutive: str | tuple[int, int] = (1, 1),
    since: float | None = None,
    rig: str | None = None,
) -> MotionResult:
    """Wait until there is motion in ``x`` of the last ``y`` frames (``consecutive="x/y"``)."""
    detector = MotionDetector(
        region=region, mask=mask, noise_threshold=noise_threshold, min_size=min_size, consecutive=consecutive
    )
    watch = _Watch(source, timeout_secs, rig, since)
    result: MotionResult | None = None
    for frame in watch:
        result = detector.update(frame)
        if result:
            result.details.update(watch.details())
            return result
    if result is None:
        result = MotionResult("motion", False, None, None, 0.0)
    result.ok = False
    result.details.update(watch.details())
    return result


def wait_until(
    predicate: Callable[[Frame], Any],
    source: Any,
    *,
    timeout_secs: float = 10.0,
    stable_secs: float = 0.0,
    since: float | None = None,
    rig: str | None = None,
) -> WaitResult:
    """Wait until ``predicate(frame)`` is truthy and stays truthy for ``stable_secs`` of frame time.

    The result's frame is the first frame of the stable run; ``value`` is the predicate's return
    value there (a check result keeps its region and score). Falsy at the timeout.
    """
    watch = _Watch(source, timeout_secs + stable_secs, rig, since)
    first: tuple[Frame, Any] | None = None
    last_value: Any = None
    last_frame: Frame | None = None
    for frame in watch:
        value = predicate(frame)
        last_value, last_frame = value, frame
        if value:
            if first is None:
                if watch.start is not None and frame.time - watch.start > timeout_secs + EPS:
                    break  # became true too late to be stable within the budget
                first = (frame, value)
            if frame.time - first[0].time >= stable_secs - EPS:
                return _wait_result(True, first[0], first[1], watch, frame)
        else:
            first = None
    frame, value = first if first is not None else (last_frame, last_value)
    return _wait_result(False, frame, value, watch, last_frame)


def _wait_result(ok: bool, frame: Frame | None, value: Any, watch: _Watch, last: Frame | None) -> WaitResult:
    region = value.region if isinstance(value, CheckResult) else None
    score = float(value.score) if isinstance(value, CheckResult) else float(bool(value))
    details = watch.details()
    if last is not None and frame is not None:
        details["stable_for"] = round(last.time - frame.time, 6)
    result = WaitResult("wait_until", ok, frame, region, score, details)
    result.value = value
    return result


def detect_transition(
    press: Callable[[], Any],
    source: Any,
    *,
    timeout_secs: float = 10.0,
    stable_secs: float = 1.0,
    region: Region = Region.ALL,
    mask: MaskLike | None = None,
    noise_threshold: int = DEFAULT_NOISE_THRESHOLD,
    min_size: tuple[int, int] = DEFAULT_MIN_SIZE,
    clock: Callable[[], float] = time.monotonic,
    rig: str | None = None,
) -> TransitionResult:
    """Press a key (call ``press``), wait for the picture to start changing and then to settle.

    ``clock`` must be the clock the frames are stamped with (``time.monotonic`` for the capture
    driver). The reference is the last frame stamped before the press; the transition starts at
    the first later frame that differs from it, and ends at the first frame of a run of
    ``stable_secs`` without change. Truthy when both happened within ``timeout_secs`` of the
    press; ``details['why']`` is ``no-change`` or ``not-settled`` otherwise.
    """
    comparer = _Comparer(region, mask, noise_threshold, min_size, None)
    frames = iter(iterate(source, timeout_secs + stable_secs + 1.0))
    try:
        before = check_frame(next(frames), rig)
    except StopIteration:
        raise InfraError("video source gave no frame before the key press", rig=rig, instrument="video") from None
    reference = comparer.crop(before)
    press_time: float | None = clock()
    press()
    if press_time is not None and abs(before.time - press_time) > 60:
        press_time = None  # frames stamped on another clock: the press happened at the next frame
    watch = _Watch(_chain(before, frames), timeout_secs + stable_secs, rig)
    start: Frame | None = None
    still_since: Frame | None = None
    previous = reference
    last: Frame = before
    for frame in watch:
        last = frame
        if frame is before:
            continue
        current = comparer.crop(frame)
        if press_time is None:
            press_time = frame.time
        if frame.time < press_time:  # stamped before the press: still "before"
            reference = previous = current
            continue
        if start is None:
            changed, _, _ = comparer.compare(reference, current)
            if changed:
                start, still_since = frame, frame
            elif frame.time - press_time > timeout_secs:
                break
        else:
            changed, _, _ = comparer.compare(previous, current)
            if changed:
                still_since = frame
            elif still_since is not None and frame.time - still_since.time >= stable_secs - EPS:
                return _transition(True, still_since, press_time, start, watch, comparer.box)
            if still_since is not None and still_since.time - press_time > timeout_secs:
                break
        previous = current
    why = "no-change" if start is None else "not-settled"
    return _transition(False, last, press_time, start, watch, comparer.box, why)


def _chain(first: Frame, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _transition(
    ok: bool,
    frame: Frame,
    press_time: float | None,
    start: Frame | None,
    watch: _Watch,
    box: Region,
    why: str | None = None,
) -> TransitionResult:
    details = watch.details()
    details.pop("why", None)
    details["press_time"] = press_time
    details["animation_start"] = None if start is None else start.time
    if ok and press_time is not None and start is not None:
        details["end_time"] = frame.time
        details["duration"] = round(frame.time - press_time, 6)
        details["animation_duration"] = round(frame.time - start.time, 6)
        details["latency"] = round(start.time - press_time, 6)
    if why:
        details["why"] = why
    score = float(details.get("duration", 0.0) or 0.0)
    return TransitionResult("transition", ok, frame, box, score, details)
