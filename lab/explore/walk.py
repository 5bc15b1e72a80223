"""The explorer's steered random walk: which events to try next, from a seed.

Each step is a short *burst* of events: remote keys at a human's pace or at hostile speed (a
double press, keys during an animation), now and then a power event (a cut during boot, a cycle)
or a shell action, now and then a *power storm* (cuts in a row, each before the box finished
booting from the last). Some bursts are *fast runs*: 4-8 keys with every pause hostile, the way a
user mashes keys while a banner fades or a menu slides in (timing faults live in such windows).
Bursts that led to a screen not seen before, and the last few that changed the screen at all,
are kept and replayed with small changes (a key added, replaced or dropped, pauses made hostile).
Keys are drawn in two steps, as Android's monkey draws event classes before events: first a key
*family* (digits, navigation, zapping, menus, media, power: from the key's name, see
:func:`key_family`), so that the ten digit keys do not drown the two zapping keys, then a key of
that family (the power family gets a tenth of its weight: standby is a dead end where the walk
can see nothing). Both draws are steered by feedback: a key not yet tried on the current screen weighs
up to twice as much, a key whose presses have changed the screen (more: led to an unseen one)
weighs more, a key that changed nothing on this screen in its last tries weighs a quarter, and the
last key is repeated with some probability (people press twice). *Mashes* press a small hot set of
2-3 such keys 5-10 times in any order at hostile speed (n-grams of effective keys: a double zap
and a banner key, a menu key twice and back), and fast runs are longer than a human burst, so that
more short windows of keys are tried per minute. When the rig has a network shaper and the walk is
given impairment profiles, a step may switch the link to another of them (or back to clean): the
profile then stays while the walk goes on, as a network's weather does. Everything is drawn from one
``random.Random(seed)``, so a walk is reproducible from its seed.

Example::

    walker = Walker(random.Random(7), keys=remote.keys)
    burst = walker.burst("screen-1")        # [Event("key", "KEY_OK", 0.1), ...]
    walker.learn("screen-1", burst, "screen-2", new=True)
"""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from lab.explore.events import Event

#: keys a walk leaves out by default: they only change the volume, or are colour keys that
#: rarely mean anything outside an app
QUIET_KEYS = frozenset({"KEY_VOLUMEUP", "KEY_VOLUMEDOWN", "KEY_RED", "KEY_GREEN", "KEY_YELLOW", "KEY_BLUE"})

#: key families by name without ``KEY_`` (a remote's usual layout); names are matched whole
_FAMILIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("digit", re.compile(r"(NUMERIC_)?\d")),
    ("power", re.compile(r"POWER\d?|STANDBY|SLEEP|WAKEUP")),
    ("zap", re.compile(r"(CHANNEL|CH|PAGE|PROGRAM)_?(UP|DOWN|PLUS|MINUS)|PREVIOUS|LAST|PREVIOUSCHANNEL")),
    ("media", re.compile(r"PLAY|PAUSE|PLAYPAUSE|STOP|RECORD|REWIND|FASTFORWARD|FORWARD|MUTE|VOLUME_?(UP|DOWN)|AUDIO")),
    ("colour", re.compile(r"RED|GREEN|YELLOW|BLUE")),
    ("nav", re.compile(r"UP|DOWN|LEFT|RIGHT|OK|ENTER|SELECT|BACK|EXIT|RETURN|BACKSPACE")),
)


def key_family(key: str) -> str:
    """The family a remote key belongs to, from its name (see ``_FAMILIES``; others are "menu")."""
    name = key.upper().removeprefix("KEY_")
    for family, pattern in _FAMILIES:
        if pattern.fullmatch(name):
            return family
    return "menu"  # MENU, HOME, EPG, GUIDE, SETUP, INFO, TEXT, ...: keys that open a screen


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
    fast: float = 0.25  # probability per step of a fast run: keys during the animations they start
    fast_len: tuple[int, int] = (5, 12)  # keys in a fast run (every pause in it hostile)
    mash: float = 0.35  # probability per step of a mash: a hot set of 2-3 keys pressed in any order, fast
    mash_len: tuple[int, int] = (5, 10)  # presses in a mash
    mash_recent: float = 0.3  # probability that a hot key is one of the keys that changed the screen lately
    families: bool = True  # draw a key family first, then a key of it (False: keys drawn directly)
    noop_tries: int = 2  # tries on a screen without a change after which a key weighs a quarter there
    # a family's weight is scaled by its share here (1 when not named): power keys lead to standby,
    # where nothing but the power key does anything (monkey's small share of system keys)
    family_share: dict[str, float] = field(default_factory=lambda: {"power": 0.1})
    recent: int = 8  # bursts that changed the screen lately, kept beside the corpus for mutation
    shell_actions: Sequence[str] = ()
    net: float = 0.0  # probability per step of switching the network profile (when some are given)
    net_profiles: Sequence[str] = ()  # impairment profiles the walk may switch to (names in rigs/profiles)


@dataclass
class Walker:
    """Draws bursts of events (see module docstring)."""

    rng: random.Random
    keys: Sequence[str]
    options: WalkOptions = field(default_factory=WalkOptions)
    tries: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    effect: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    uses: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    noop: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    last_key: str | None = None
    corpus: list[list[Event]] = field(default_factory=list)
    lately: list[list[Event]] = field(default_factory=list)
    net_profile: str = "clean"  # the profile the walk last switched to (clean after a restart)

    def __post_init__(self) -> None:
        self.keys = sorted(set(self.keys))
        if not self.keys:
            raise ValueError("the walk needs at least one remote key")
        self.family_of = {k: key_family(k) if self.options.families else "all" for k in self.keys}
        self.by_family: dict[str, list[str]] = defaultdict(list)
        for k in self.keys:
            self.by_family[self.family_of[k]].append(k)

    def restart(self) -> None:
        """The target went back to its known state (a reset): the link is clean again."""
        self.net_profile = "clean"

    def _net(self) -> Event:
        """A switch to another network profile than the current one (``clean`` among them)."""
        names = [p for p in dict.fromkeys(["clean", *self.options.net_profiles]) if p != self.net_profile]
        self.net_profile = self.rng.choice(names) if names else "clean"
        return Event("net", self.net_profile, self._gap(True))

    def _gap(self, first: bool) -> float:
        if first:
            return round(self.rng.uniform(0.0, 0.4), 3)
        if self.rng.random() < self.options.hostile:
            return round(self.rng.uniform(0.03, 0.25), 3)
        return round(self.rng.uniform(0.4, 1.6), 3)

    def _key(self, screen: str) -> str:
        if self.last_key is not None and self.rng.random() < self.options.repeat:
            return self.last_key
        weight = {k: self._weight(screen, k) for k in self.keys}
        families = sorted(self.by_family)
        if len(families) > 1:  # a family by the mean weight of its keys (times sqrt of its size), then a key
            share = self.options.family_share
            means = [
                share.get(f, 1.0) * sum(weight[k] for k in self.by_family[f]) / math.sqrt(len(self.by_family[f]))
                for f in families
            ]
            family = self.rng.choices(families, weights=means, k=1)[0]
        else:
            family = families[0]
        pool = self.by_family[family]
        return self.rng.choices(pool, weights=[weight[k] for k in pool], k=1)[0]

    def _weight(self, screen: str, key: str) -> float:
        """How much ``key`` is wanted on ``screen``: its effect so far, novelty here, no-op history here."""
        w = (0.1 + self.effect[key] / max(1, self.uses[key])) * (1.0 + 1.0 / math.sqrt(1.0 + self.tries[(screen, key)]))
        if self.noop[(screen, key)] >= self.options.noop_tries:
            w *= 0.25
        return w

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
        if opts.net_profiles and roll < opts.net:
            return [self._net()]
        roll -= opts.net if opts.net_profiles else 0.0
        if (self.corpus or self.lately) and roll < opts.mutate:
            return self._mutant(screen or "?")
        roll -= opts.mutate
        if roll < opts.mash:
            return self._mash(screen or "?")
        roll -= opts.mash
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

    def _mash(self, screen: str) -> list[Event]:
        """A hot set of 2-3 distinct keys (drawn as single keys are, or from the keys of the bursts
        that changed the screen lately), pressed in any order and any number of times at hostile
        speed: short n-grams of keys, each key often repeated."""
        hot: list[str] = []
        recent = [e.arg for b in self.lately for e in b if e.kind == "key"]
        for _ in range(6 * self.rng.randint(2, 3)):
            if len(hot) >= 3 or (len(hot) >= 2 and self.rng.random() < 0.5):
                break
            lately = recent and self.rng.random() < self.options.mash_recent
            key = self.rng.choice(recent) if lately else self._key(screen)
            if key not in hot:
                hot.append(key)
        out = []
        for i in range(self.rng.randint(*self.options.mash_len)):
            key = self.rng.choice(hot)
            self.tries[(screen, key)] += 1
            self.last_key = key
            out.append(Event("key", key, round(self.rng.uniform(0.03, 0.25), 3) if i else self._gap(True)))
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
            if before is not None:  # every key of the burst changed nothing here (or undid itself)
                for k in set(keys):
                    self.noop[(before, k)] += 1
            return
        if before is not None:
            for k in set(keys):
                self.noop[(before, k)] = 0
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
