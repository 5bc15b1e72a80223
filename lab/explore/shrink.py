"""Shrinking a failing event sequence to a minimal one that still fails (delta debugging).

:func:`shrink` takes a sequence that made the box fail and a ``fails`` callable that replays a
candidate from a known state and says whether the fault came back. It first looks for the shortest
failing *suffix* (rare faults are mostly local: the last few events); when what is left is still
long, the fault was seen long after its cause (a frozen picture is judged once the walk is back on
a moving screen), and the shortest failing *prefix* of it is bisected, each candidate ending with
the event after which the fault was seen (so it does not pass for the wrong reason, ending under a
menu; a suffix keeps in front the standby toggle the cut-off events left in effect); suffix and
prefix cuts alternate while they shrink a long sequence. Zeller's ddmin then
makes what remains 1-minimal (short sequences go straight to single removals), and each short
pause is tried at a human's pace so that only the timing that matters stays hostile. Every
replay costs a reboot, so the search is bounded by ``max_runs``; when the budget runs out the
smallest failing sequence found so far is returned.

Example::

    result = shrink(events, target.reproduces, max_runs=60)
    print(len(events), "->", len(result.events), "in", result.runs, "runs")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lab.explore.events import RELAXED_GAP, Event
from lab.explore.walk import key_family


@dataclass
class ShrinkResult:
    """The smallest failing sequence found, and what finding it cost."""

    events: list[Event]
    runs: int
    exhausted: bool  # the rerun budget ran out before the search ended
    steps: list[str] = field(default_factory=list)


#: sequences this short go straight to ddmin (a bisection would cost as many reruns as it saves)
_SHORT = 6


class _Budget(Exception):
    pass


class _Oracle:
    """``fails`` with a rerun budget and a cache (the same candidate is never replayed twice)."""

    def __init__(
        self, fails: Callable[[list[Event]], bool], max_runs: int, progress: Callable[[str], None], confirm: int
    ) -> None:
        self.fails = fails
        self.max_runs = max_runs
        self.confirm = confirm
        self.runs = 0
        self.cache: dict[tuple[Event, ...], bool] = {}
        self.progress = progress

    def __call__(self, events: Sequence[Event]) -> bool:
        key = tuple(events)
        if key in self.cache:
            return self.cache[key]
        if not events:
            return False
        if self.runs >= self.max_runs:
            raise _Budget
        # A candidate that passes its first replay is dropped (passing is the common case and costs
        # one replay). One that failed is kept once it has failed ``confirm`` times, before it passed
        # twice: a reduction is never bought with one lucky failure, and a fault that reproduces
        # most of the time (not every time) is not lost to a single miss.
        fails = passes = 0
        while fails < self.confirm and passes < (1 if fails == 0 else 2):
            if self.runs >= self.max_runs:
                raise _Budget
            self.runs += 1
            if self.fails(list(events)):
                fails += 1
            else:
                passes += 1
        failed = fails >= self.confirm
        self.cache[key] = failed
        self.progress(f"rerun {self.runs}/{self.max_runs}: {len(events)} events -> {'fails' if failed else 'passes'}")
        return failed


def _toggles(events: Sequence[Event]) -> list[Event]:
    """The power-key toggle still in effect after ``events``: the last power key when an odd number
    of them was pressed (the box is in standby), else nothing. A suffix cut keeps it in front, so a
    candidate does not start awake where the original was in standby (and end in standby where the
    original had resumed, passing for the wrong reason)."""
    presses = [e for e in events if e.kind == "key" and key_family(e.arg) == "power"]
    return presses[-1:] if len(presses) % 2 else []


def _tail(events: list[Event], length: int) -> list[Event]:
    """The last ``length`` events, after the standby toggle the events before them left in effect."""
    cut = len(events) - length
    return _toggles(events[:cut]) + events[cut:]


def _suffix(events: list[Event], test: _Oracle) -> list[Event]:
    """The shortest failing suffix, looked for with lengths 1, 2, 4, ... then bisected."""
    n = len(events)
    length, last_pass = 1, 0
    while length < n:
        if test(_tail(events, length)):
            break
        last_pass = length
        length *= 2
    else:
        return events  # no suffix of up to half of it fails: the prefix phase cuts from the other end
    lo, hi = last_pass, length  # suffix of lo passes, of hi fails
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if test(_tail(events, mid)):
            hi = mid
        else:
            lo = mid
    return _tail(events, hi)


def _prefix(events: list[Event], test: _Oracle) -> list[Event]:
    """The shortest failing prefix, bisected, each candidate ending with the original's last event.

    A fault is often judged long after the events that caused it (a frozen picture is seen only
    once the walk is back on a screen that moves), leaving a tail no suffix can drop. A bare prefix
    often ends somewhere the fault cannot be seen (a menu over the frozen picture), so it would pass
    for the wrong reason and mislead the bisection: every candidate keeps the last event, the one
    after which the fault was seen (ddmin drops it later when it does not matter). Skipped for short
    sequences, where ddmin is cheap anyway."""
    n = len(events)
    if n <= _SHORT:
        return events
    tail = events[-1:]
    lo, hi = 0, n - 1  # candidate(hi) is the whole sequence, which fails
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if test(events[:mid] + tail):
            hi = mid
        else:
            lo = mid
    return events[:hi] + tail


def _ddmin(events: list[Event], test: _Oracle) -> list[Event]:
    """Zeller's ddmin: a 1-minimal failing subsequence (removing any one event makes it pass)."""
    # short sequences go straight to single removals (what 1-minimality needs anyway)
    granularity = len(events) if len(events) <= _SHORT else 2
    while len(events) >= 2:
        size = len(events) // granularity
        chunks = [events[i : i + size] for i in range(0, len(events), size)] if size else [[e] for e in events]
        reduced = False
        for i in range(len(chunks)):
            complement = [e for j, c in enumerate(chunks) if j != i for e in c]
            if complement and test(complement):
                events = complement
                granularity = max(granularity - 1, 2)
                reduced = True
                break
        if not reduced:
            if granularity >= len(events):
                break
            granularity = min(granularity * 2, len(events))
    return events


def _relax(events: list[Event], test: _Oracle) -> list[Event]:
    """Each short pause at a human's pace, kept where the fault still comes back."""
    out = list(events)
    for i, e in enumerate(out):
        if i == 0 or e.gap >= RELAXED_GAP:
            continue
        candidate = out[:i] + [e.relaxed()] + out[i + 1 :]
        if test(candidate):
            out = candidate
    if out and out[0].gap != 0.0:
        first = Event(out[0].kind, out[0].arg, 0.0)
        if test([first, *out[1:]]):
            out[0] = first
    return out


def shrink(
    events: Sequence[Event],
    fails: Callable[[list[Event]], bool],
    *,
    max_runs: int = 60,
    confirm: int = 1,
    progress: Callable[[str], None] = lambda _: None,
) -> ShrinkResult:
    """Shrink ``events`` (which failed) to a small sequence that still ``fails`` (see module doc).

    ``confirm``: replays a candidate must fail in a row to be kept (2 guards against a check that
    fails now and then: a reduction is never bought with one lucky failure).
    """
    test = _Oracle(fails, max_runs, progress, confirm)
    best = list(events)
    steps: list[str] = []
    exhausted = False
    try:
        # Cut from both ends in turn while that shrinks a long sequence: each cut is a bisection
        # (a few reruns), ddmin's chunks cost more on a long sequence than on what the cuts leave.
        phase_of = {"suffix": _suffix, "prefix": _prefix}
        name, stale = "suffix", 0
        while stale < 2 and len(best) > _SHORT:
            before = len(best)
            best = phase_of[name](best, test)
            steps.append(f"{name}: {before} -> {len(best)} events ({test.runs} reruns so far)")
            stale = stale + 1 if len(best) == before else 0
            name = "prefix" if name == "suffix" else "suffix"
        for name, phase in (("ddmin", _ddmin), ("timing", _relax)):
            before = len(best)
            best = phase(best, test)
            steps.append(f"{name}: {before} -> {len(best)} events ({test.runs} reruns so far)")
    except _Budget:
        exhausted = True
        failing = [list(k) for k, v in test.cache.items() if v]
        if failing:
            best = min(failing, key=lambda s: (len(s), -sum(e.gap for e in s)))
        steps.append(f"rerun budget of {max_runs} spent")
    return ShrinkResult(events=best, runs=test.runs, exhausted=exhausted, steps=steps)
