"""The explorer's steered random walk: which events to try next, from a seed.

Each step is a short *burst* of events: remote keys at a human's pace or at hostile speed (a
double press, keys during an animation), now and then a power event (a cut during boot, a cycle)
or a shell action, now and then a *power storm* (cuts in a row, each before the box finished
booting from the last). Some bursts are *fast runs*: 4-8 keys with every pause hostile, the way a
user mashes keys while a banner fades or a menu slides in (timing faults live in such windows).
Bursts that led to a screen not seen before, and the last few that changed the screen at all,
are kept and replayed with small changes (a key added, replaced or dropped, pauses made hostile).
Keys are drawn with weights that steer towards what is new: a key not yet tried on the current
screen weighs up to twice as much, a key whose presses have changed the screen (more: led to an
unseen one) weighs more, and the last key is repeated with some probability (people press twice). Everything is drawn
from one ``random.Random(seed)``, so a walk is reproducible from its seed.

Example::

    walker = Walker(random.Random(7), keys=remote.keys)
    burst = walker.burst("screen-1")        # [Event("key", "KEY_OK", 0.1), ...]
    walker.learn("screen-1", burst, "screen-2", new=True)
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from lab.explore.events import Event

#: keys a walk leaves out by default: they only change the volume, or are colour keys that
#: rarely mean anything outside an app
QUIET_KEYS = frozenset({"KEY_VOLUMEUP", "KEY_VOLUMEDOWN", "KEY_RED", "KEY_GREEN", "KEY_YELLOW", "KEY_BLUE"})


@dataclass
class WalkOptions:
    """How bold the walk is."""

    burst: tuple[int, int] = (1, 4)  # events per step
    hostile: float = 0.4  # probability that a gap inside a burst is hostile (30-250 ms)
    repeat: float = 0.3  # probability of pressing the last key again
    power_cut: float = 0.02  # probability per step of a power cut (off 0.2-2 s, no wait for boot)
    power_cycle: float = 0.01  # probability per step of a power cycle (waits for the boot)
    storm: float = 0.02  # probability per step of a power storm: cuts in a row, faster than the boot
    storm_len: tuple[int, int] = (3, 6)  # power cuts in a storm
    storm_gap: tuple[float, float] = (0.1, 2.0)  # seconds from power-on to the next cut in a storm
    shell: float = 0.0  # probability per step of a shell action (when some are given)
    mutate: float = 0.35  # probability per step of replaying a burst that found a new screen, mutated
    corpus_size: int = 64  # bursts kept for that
    fast: float = 0.4  # probability per step of a fast run: keys during the animations they start
    fast_len: tuple[int, int] = (4, 8)  # keys in a fast run (every pause in it hostile)
    recent: int = 8  # bursts that changed the screen lately, kept beside the corpus for mutation
    shell_actions: Sequence[str] = ()


@dataclass
class Walker:
    """Draws bursts of events (see module docstring)."""

    rng: random.Random
    keys: Sequence[str]
    options: WalkOptions = field(default_factory=WalkOptions)
    tries: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    effect: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    uses: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    last_key: str | None = None
    corpus: list[list[Event]] = field(default_factory=list)
    lately: list[list[Event]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keys = sorted(set(self.keys))
        if not self.keys:
            raise ValueError("the walk needs at least one remote key")

    def _gap(self, first: bool) -> float:
        if first:
            return round(self.rng.uniform(0.0, 0.4), 3)
        if self.rng.random() < self.options.hostile:
            return round(self.rng.uniform(0.03, 0.25), 3)
        return round(self.rng.uniform(0.4, 1.6), 3)

    def _key(self, screen: str) -> str:
        if self.last_key is not None and self.rng.random() < self.options.repeat:
            return self.last_key
        weights = [
            (0.1 + self.effect[k] / max(1, self.uses[k])) * (1.0 + 1.0 / math.sqrt(1.0 + self.tries[(screen, k)]))
            for k in self.keys
        ]
        return self.rng.choices(list(self.keys), weights=weights, k=1)[0]

    def burst(self, screen: str | None) -> list[Event]:
        """The next step's events; gaps inside the burst are planned, the first one is short."""
        opts = self.options
        roll = self.rng.random()
        if roll < opts.power_cut:
            return [Event("power_cut", f"{self.rng.uniform(0.2, 2.0):.2f}", self._gap(True))]
        roll -= opts.power_cut
        if roll < opts.power_cycle:
            return [Event("power_cycle", f"{self.rng.uniform(0.5, 2.0):.2f}", self._gap(True))]
        roll -= opts.power_cycle
        if roll < opts.storm:
            return [
                Event(
                    "power_cut",
                    f"{self.rng.uniform(0.2, 1.0):.2f}",
                    self._gap(True) if not i else round(self.rng.uniform(*opts.storm_gap), 3),
                )
                for i in range(self.rng.randint(*opts.storm_len))
            ]
        roll -= opts.storm
        if opts.shell_actions and roll < opts.shell:
            return [Event("shell", self.rng.choice(list(opts.shell_actions)), self._gap(True))]
        roll -= opts.shell if opts.shell_actions else 0.0
        if (self.corpus or self.lately) and roll < opts.mutate:
            return self._mutant(screen or "?")
        roll -= opts.mutate
        fast = roll < opts.fast
        n = self.rng.randint(*(opts.fast_len if fast else opts.burst))
        out = []
        for i in range(n):
            key = self._key(screen or "?")
            self.tries[(screen or "?", key)] += 1
            self.last_key = key
            gap = round(self.rng.uniform(0.03, 0.25), 3) if fast and i else self._gap(i == 0)
            out.append(Event("key", key, gap))
        return out

    def _mutant(self, screen: str) -> list[Event]:
        """A burst that led somewhere new, changed a little: a key added, replaced or dropped, or its
        pauses made hostile (what fuzzers do with inputs that found new paths)."""
        base = list(self.rng.choice(self.corpus + self.lately))
        op = self.rng.randrange(4)
        if op == 0 and len(base) < 8:
            base.append(Event("key", self._key(screen), self._gap(False)))
        elif op == 1:
            i = self.rng.randrange(len(base))
            base[i] = Event("key", self._key(screen), base[i].gap)
        elif op == 2 and len(base) > 1:
            del base[self.rng.randrange(len(base))]
        else:
            base = [
                Event(e.kind, e.arg, round(self.rng.uniform(0.03, 0.25), 3) if i else e.gap) for i, e in enumerate(base)
            ]
        for e in base:
            self.tries[(screen, e.arg)] += 1
        self.last_key = base[-1].arg
        return base

    def learn(self, before: str | None, burst: Sequence[Event], after: str | None, *, new: bool) -> None:
        """Credit the burst's keys when the screen changed (more when it is one not seen before)."""
        keys = [e.arg for e in burst if e.kind == "key"]
        for k in keys:
            self.uses[k] += 1
        if after is None or after == before:
            return
        if self.options.recent and all(e.kind == "key" for e in burst):
            self.lately.append(list(burst))
            if len(self.lately) > self.options.recent:
                self.lately.pop(0)
        if new and all(e.kind == "key" for e in burst):
            self.corpus.append(list(burst))
            if len(self.corpus) > self.options.corpus_size:
                self.corpus.pop(0)
        for k in keys:  # shared among the burst's keys: bystanders get little
            self.effect[k] += (2.0 if new else 1.0) / len(keys)
