"""Waiters: watch a frame source until something is seen, in frame time; raise when it is not.

Every waiter runs on the one engine in :mod:`lab.video.engine`: timeouts are measured in the
frames' own time (capture timestamps or stream PTS), not wall time, from the first frame seen or
from ``since`` (a time on the frames' clock, e.g. when a key was pressed: frames from before it
are skipped, and the capture driver replays the ones since then), so a loaded lab host that
delivers frames late does not shorten a wait.

On success a waiter returns the result of the frame that decided it (truthy). When the thing is
not seen it raises :class:`~lab.video.result.VideoCheckFailed` -- a DeviceFault the plugin files,
carrying the deciding result and its frame (for a match, the best-scoring frame) with
``details`` giving ``frames`` seen, ``dropped`` frames (gaps in ``seq``), ``elapsed`` frame time
and, from the capture driver, ``source_dropped`` and ``consumer_dropped``. A capture that was
lost, or dropped so many frames that the picture was not really watched, raises
:class:`~lab.errors.InfraError` instead. ``check=False`` returns the falsy result rather than
raising (the capture's own failures still raise InfraError).

Example::

    wait_for_match("logo-ch5.png", capture, timeout_secs=5)          # raises VideoCheckFailed
    wait_for_motion(capture, mask=~Mask(banner), consecutive="10/20")
    if not wait_for_black(capture, timeout_secs=2, check=False): ...
    result = wait_until(lambda f: not is_black(f), capture, timeout_secs=30, stable_secs=2)
    t = wait_for_transition(lambda: remote.press("KEY_MENU"), capture, stable_secs=1.0)
    print(t.details["animation_start"] - t.details["press_time"], t.details["duration"])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lab.errors import InfraError
from lab.video.black import BlackResult, is_black
from lab.video.engine import EPS, WaitResult, Watch, failure, wait
from lab.video.frame import Frame
from lab.video.freeze import DEFAULT_FREEZE_NOISE, FreezeDetector, FreezeResult
from lab.video.match import MatchParameters, MatchResult, Template, as_template, match
from lab.video.motion import DEFAULT_MIN_SIZE, DEFAULT_NOISE_THRESHOLD, MotionDetector, MotionResult, _Comparer
from lab.video.region import MaskLike, Region
from lab.video.result import CheckResult
from lab.video.source import check_frame, iterate


class TransitionResult(CheckResult):
    """Result of :func:`detect_transition`; ``details`` hold ``press_time``, ``animation_start``,
    ``end_time``, ``duration`` (press to settled) and ``animation_duration`` (start to settled)."""

    @property
    def symptom(self) -> str:
        return "transition" if self.ok else f"transition-{self.details.get('why', 'failed')}"


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
    check: bool = True,
    what: str | None = None,
    symptom: str | None = None,
) -> MatchResult:
    """Wait until ``reference`` matches (``consecutive`` frames in a row); returns the deciding frame's result.

    Not seen: VideoCheckFailed carrying the best-scoring non-match seen (its frame is the evidence),
    or that falsy result with ``check=False``.
    """
    template = as_template(reference, mask)
    result = wait(
        lambda frame: match(template, frame, region=region, params=params),
        source,
        timeout_secs=timeout_secs,
        consecutive=consecutive,
        since=since,
        rig=rig,
        check=check,
        what=what or f"match of {template.name}",
        symptom=symptom or "match-not-seen",
        better=_closer,
    )
    if not isinstance(result, MatchResult):  # no frame at all
        result = MatchResult("match", False, result.frame, None, 0.0, {"reference": template.name, **result.details})
    return result


def _closer(new: CheckResult, kept: CheckResult) -> bool:
    """Is ``new`` a closer miss than ``kept``: higher grey score, then smaller colour difference."""
    if new.score != kept.score:
        return new.score > kept.score
    return float(new.details.get("confirm_diff", 1.0)) < float(kept.details.get("confirm_diff", 1.0))


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
    check: bool = True,
    what: str = "motion",
    symptom: str | None = None,
) -> MotionResult:
    """Wait until there is motion in ``x`` of the last ``y`` frames (``consecutive="x/y"``).

    Not seen: VideoCheckFailed (symptom ``video-frozen`` unless given), or the falsy result with ``check=False``.
    """
    detector = MotionDetector(
        region=region, mask=mask, noise_threshold=noise_threshold, min_size=min_size, consecutive=consecutive
    )
    result = wait(
        detector.update,
        source,
        timeout_secs=timeout_secs,
        since=since,
        rig=rig,
        check=check,
        what=what,
        symptom=symptom or "video-frozen",
    )
    if not isinstance(result, MotionResult):
        result = MotionResult("motion", False, result.frame, None, 0.0, dict(result.details))
    return result


def wait_for_black(
    source: Any,
    *,
    timeout_secs: float = 10.0,
    stable_secs: float = 0.0,
    region: Region = Region.ALL,
    mask: MaskLike | None = None,
    threshold: int = 20,
    since: float | None = None,
    rig: str | None = None,
    check: bool = True,
    what: str = "black screen",
    symptom: str | None = None,
) -> BlackResult:
    """Wait until the picture is black (and stays black ``stable_secs``); symptom ``not-black`` when it is not."""
    result = wait(
        lambda frame: is_black(frame, region=region, mask=mask, threshold=threshold),
        source,
        timeout_secs=timeout_secs,
        stable_secs=stable_secs,
        since=since,
        rig=rig,
        check=check,
        what=what,
        symptom=symptom or "not-black",
    )
    if not isinstance(result, BlackResult):
        result = BlackResult("black", False, result.frame, None, 0.0, dict(result.details))
    return result


def wait_for_picture(
    source: Any,
    *,
    timeout_secs: float = 10.0,
    stable_secs: float = 0.0,
    region: Region = Region.ALL,
    mask: MaskLike | None = None,
    threshold: int = 20,
    since: float | None = None,
    rig: str | None = None,
    check: bool = True,
    what: str = "a picture (not black)",
    symptom: str | None = None,
) -> CheckResult:
    """Wait until the picture is not black; symptom ``black-screen`` when it stays black."""

    def step(frame: Frame) -> CheckResult:
        r = is_black(frame, region=region, mask=mask, threshold=threshold)
        return CheckResult("picture", not r.ok, r.frame, r.region, r.score, {"black_max": r.score})

    return wait(
        step,
        source,
        timeout_secs=timeout_secs,
        stable_secs=stable_secs,
        since=since,
        rig=rig,
        check=check,
        what=what,
        symptom=symptom or "black-screen",
    )


def wait_for_freeze(
    source: Any,
    *,
    timeout_secs: float = 10.0,
    duration: float = 2.0,
    region: Region = Region.ALL,
    mask: MaskLike | None = None,
    noise_threshold: int = DEFAULT_FREEZE_NOISE,
    since: float | None = None,
    rig: str | None = None,
    check: bool = True,
    what: str = "a still picture",
    symptom: str | None = None,
) -> FreezeResult:
    """Wait until the picture has been still for ``duration`` s (a paused picture, a screensaver's wait).

    ``timeout_secs`` is the budget for the freeze to *start*; the wait runs ``duration`` longer.
    """
    detector = FreezeDetector(duration=duration, region=region, mask=mask, noise_threshold=noise_threshold)
    result = wait(
        detector.update,
        source,
        timeout_secs=timeout_secs + duration,
        since=since,
        rig=rig,
        check=check,
        what=what,
        symptom=symptom or "not-frozen",
    )
    if not isinstance(result, FreezeResult):
        result = FreezeResult("freeze", False, result.frame, None, 0.0, dict(result.details))
    return result


def wait_for_text(
    text: str,
    source: Any,
    *,
    timeout_secs: float = 10.0,
    region: Region = Region.ALL,
    since: float | None = None,
    rig: str | None = None,
    check: bool = True,
    symptom: str | None = None,
    **ocr_options: Any,
) -> CheckResult:
    """Wait until OCR reads ``text`` in ``region`` (needs tesseract: InfraError when it is missing)."""
    from lab.video.ocr import match_text

    return wait(
        lambda frame: match_text(text, frame, region=region, **ocr_options),
        source,
        timeout_secs=timeout_secs,
        since=since,
        rig=rig,
        check=check,
        what=f"text {text!r}",
        symptom=symptom or "text-not-seen",
    )


def wait_until(
    predicate: Callable[[Frame], Any],
    source: Any,
    *,
    timeout_secs: float = 10.0,
    stable_secs: float = 0.0,
    since: float | None = None,
    rig: str | None = None,
    check: bool = True,
    what: str = "condition",
    symptom: str | None = None,
) -> WaitResult:
    """Wait until ``predicate(frame)`` is truthy and stays truthy for ``stable_secs`` of frame time.

    The result's frame is the first frame of the stable run; ``value`` is the predicate's return
    value there (a check result keeps its region and score). Not met: VideoCheckFailed, or the
    falsy result with ``check=False``.
    """

    def wrap(result: CheckResult, raw: Any) -> WaitResult:
        out = WaitResult("wait_until", bool(raw), result.frame, result.region, float(result.score), {})
        if not isinstance(raw, CheckResult):
            out.score = float(bool(raw))
        out.value = raw
        return out

    result = wait(
        predicate,
        source,
        timeout_secs=timeout_secs,
        stable_secs=stable_secs,
        since=since,
        rig=rig,
        check=check,
        what=what,
        symptom=symptom,
        wrap=wrap,
    )
    if not isinstance(result, WaitResult):
        out = WaitResult("wait_until", False, result.frame, None, 0.0, dict(result.details))
        return out
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
    check: bool = False,
) -> TransitionResult:
    """Press a key (call ``press``), wait for the picture to start changing and then to settle.

    ``clock`` must be the clock the frames are stamped with (``time.monotonic`` for the capture
    driver). The reference is the last frame stamped before the press; the transition starts at
    the first later frame that differs from it, and ends at the first frame of a run of
    ``stable_secs`` without change. Truthy when both happened within ``timeout_secs`` of the
    press; ``details['why']`` is ``no-change`` or ``not-settled`` otherwise, and with ``check=True``
    (the default of :func:`wait_for_transition`) that raises VideoCheckFailed.
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
    watch = Watch(_chain(before, frames), timeout_secs + stable_secs, rig)
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
    result = _transition(False, last, press_time, start, watch, comparer.box, why)
    if check:
        watch.judge_failure("transition")
        raise failure(f"transition ({why})", result, watch, timeout_secs, rig=rig, symptom=result.symptom)
    return result


def wait_for_transition(press: Callable[[], Any], source: Any, **kwargs: Any) -> TransitionResult:
    """:func:`detect_transition` that raises VideoCheckFailed when nothing changed or it never settled."""
    kwargs.setdefault("check", True)
    return detect_transition(press, source, **kwargs)


def _chain(first: Frame, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _transition(
    ok: bool,
    frame: Frame,
    press_time: float | None,
    start: Frame | None,
    watch: Watch,
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
