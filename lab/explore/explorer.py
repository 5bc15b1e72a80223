"""The explorer's loop: walk, check, and on a fault shrink, measure, write and file.

Example::

    explorer = Explorer(target, Walker(random.Random(7), keys), budget=1800, seed=7)
    result = explorer.run()
    for found in result.found:
        print(found.finding.symptom, len(found.minimal), found.k, "of", found.n, found.scenario)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.explore.events import Event, dumps
from lab.explore.reproducer import write_scenario
from lab.explore.shrink import ShrinkResult, shrink
from lab.explore.target import Finding, RigTarget
from lab.explore.walk import Walker


@dataclass
class Found:
    """One fault the explorer found, shrunk and measured."""

    finding: Finding
    original: list[Event]
    minimal: list[Event]
    shrink: ShrinkResult
    k: int
    n: int
    scenario: Path | None = None
    evidence: dict[str, Path] = field(default_factory=dict)
    fault_id: int | None = None


@dataclass
class ExploreResult:
    """What one exploration did and found."""

    seed: int
    rig: str
    steps: int = 0
    events: int = 0
    resets: int = 0
    walk_seconds: float = 0.0
    screens: int = 0
    found: list[Found] = field(default_factory=list)

    @property
    def events_per_minute(self) -> float:
        """Walk throughput: events applied per minute of walking (shrinking not counted)."""
        return 60.0 * self.events / self.walk_seconds if self.walk_seconds else 0.0


@dataclass
class ExploreOptions:
    """Bounds of one exploration."""

    budget: float = 1800.0  # seconds of wall time for the walk (shrinking and measuring included)
    episode: int = 120  # events before the walk restarts from a known state (a reset costs ~6 events)
    shrink_runs: int = 40  # reruns one shrink may spend
    measure_n: int = 5  # replays of the minimal sequence to measure k of n
    stop_after: int = 1  # faults to find before stopping (0: walk the whole budget)
    out_dir: Path = Path("scenarios/found")
    evidence_dir: Path = Path("reports/explore")


class Explorer:
    """Runs the walk on one :class:`RigTarget` (see module docstring)."""

    def __init__(
        self,
        target: RigTarget,
        walker: Walker,
        *,
        seed: int,
        options: ExploreOptions | None = None,
        meta: dict[str, Any] | None = None,
        progress: Callable[[str], None] = lambda _: None,
        file: Callable[[Found], int | None] | None = None,
    ) -> None:
        self.target = target
        self.walker = walker
        self.seed = seed
        self.options = options or ExploreOptions()
        self.meta = dict(meta or {})
        self.progress = progress
        self.file = file

    def run(self) -> ExploreResult:
        """Walk until the budget is spent or ``stop_after`` faults are found."""
        opts = self.options
        result = ExploreResult(seed=self.seed, rig=self.target.rig)
        deadline = time.monotonic() + opts.budget
        target = self.target
        target.reset()
        result.resets += 1
        episode: list[Event] = []
        target.check()
        screen = target.last.screen if target.last else None
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            planned = self.walker.burst(screen)
            burst = []
            for i, event in enumerate(planned):
                # The gap recorded is the one that happened (checks take time between bursts).
                happened = time.monotonic() - target.last_action
                gap = event.gap if i else max(event.gap, happened)
                done = Event(event.kind, event.arg, round(gap, 3))
                target.apply(done)
                burst.append(done)
                if done.kind == "net":
                    backend = getattr(target.network, "active_backend", "?")
                    self.progress(f"network profile {done.arg} on {target.rig}'s link ({backend})")
            episode += burst
            result.events += len(burst)
            result.steps += 1
            finding = target.check()
            after = target.last.screen if target.last else None
            self.walker.learn(screen, burst, after, new=bool(target.last and target.last.new_screen))
            screen = after
            result.walk_seconds += time.monotonic() - t0
            result.screens = len(target.book.signatures)
            self.progress(
                f"step {result.steps}: {len(burst)} events ({result.events} in all), screen {screen}, "
                f"{result.screens} screens seen, {len(result.found)} faults"
            )
            if finding is not None:
                self.progress(f"fault {finding.symptom} after {len(episode)} events: {finding.message}")
                result.found.append(self._handle(finding, episode))
                if opts.stop_after and len(result.found) >= opts.stop_after:
                    break
            if finding is not None or len(episode) >= opts.episode:
                target.reset()
                self.walker.restart()
                result.resets += 1
                episode = []
                target.check()
                screen = target.last.screen if target.last else None
        return result

    def _reproduces(self, symptom: str) -> Callable[[list[Event]], bool]:
        def fails(events: list[Event]) -> bool:
            finding = self.target.replay(events)
            return finding is not None and finding.symptom == symptom

        return fails

    def _handle(self, finding: Finding, episode: list[Event]) -> Found:
        opts = self.options
        original = list(episode)
        # Evidence first: a run stopped while shrinking still leaves what it saw.
        evidence = opts.evidence_dir / f"{self.target.rig}-seed{self.seed}-{finding.symptom}"
        evidence.mkdir(parents=True, exist_ok=True)
        saved = {"original.json": evidence / "original.json"}
        saved["original.json"].write_text(dumps(original))
        if finding.excerpt:
            saved["console.txt"] = evidence / "console.txt"
            saved["console.txt"].write_text(finding.excerpt)
        if finding.frame is not None:
            import cv2

            saved["frame.png"] = evidence / "frame.png"
            cv2.imwrite(str(saved["frame.png"]), finding.frame.image)
        fails = self._reproduces(finding.symptom)
        # Picture checks can fail once by chance (a capture hiccup): their reductions are confirmed.
        confirm = 2 if finding.source == "picture" else 1
        shrunk = shrink(original, fails, max_runs=opts.shrink_runs, confirm=confirm, progress=self.progress)
        for line in shrunk.steps:
            self.progress(f"shrink {line}")
        k = sum(1 for _ in range(opts.measure_n) if fails(shrunk.events)) if shrunk.events else 0
        self.progress(f"minimal sequence of {len(shrunk.events)} events reproduces {k} of {opts.measure_n}")
        found = Found(finding, original, shrunk.events, shrunk, k, opts.measure_n, evidence=saved)
        saved["minimal.json"] = evidence / "minimal.json"
        saved["minimal.json"].write_text(dumps(shrunk.events))
        if shrunk.events and k:
            meta = {
                **self.meta,
                "seed": self.seed,
                "symptom": finding.symptom,
                "original sequence": f"{len(original)} events",
                "minimal sequence": f"{len(shrunk.events)} events, shrunk in {shrunk.runs} reruns",
                "reproduced": f"{k} of {opts.measure_n}",
            }
            found.scenario = write_scenario(
                opts.out_dir, title=finding.symptom, seed=self.seed, events=shrunk.events, meta=meta
            )
            saved["reproducer.py"] = found.scenario
            self.progress(f"reproducer written: {found.scenario}")
        if self.file is not None:
            found.fault_id = self.file(found)
        return found
