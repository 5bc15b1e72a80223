"""The walk is reproducible from its seed and steered by what it has seen."""

from __future__ import annotations

import random

from lab.explore.events import Event
from lab.explore.walk import Walker, WalkOptions

KEYS = ["KEY_OK", "KEY_BACK", "KEY_MENU", "KEY_CHANNELUP", "KEY_INFO"]


def _walk(seed: int, steps: int = 50) -> list[list[Event]]:
    w = Walker(random.Random(seed), KEYS)
    out = []
    for i in range(steps):
        burst = w.burst(f"screen-{i % 3}")
        out.append(burst)
        w.learn(f"screen-{i % 3}", burst, f"screen-{(i + 1) % 3}", new=i % 7 == 0)
    return out


def test_the_same_seed_walks_the_same_way_and_another_seed_does_not() -> None:
    assert _walk(7) == _walk(7)
    assert _walk(7) != _walk(8)


def test_keys_that_change_nothing_fade_and_keys_that_lead_somewhere_grow() -> None:
    w = Walker(random.Random(1), KEYS, WalkOptions(repeat=0.0, mutate=0.0, power_cut=0, power_cycle=0))
    for _ in range(300):
        burst = w.burst("home")
        moved = any(e.arg == "KEY_MENU" for e in burst)
        w.learn("home", burst, "menu" if moved else "home", new=False)
    late = [e.arg for _ in range(200) for e in w.burst("home")]
    others = [late.count(k) for k in KEYS if k != "KEY_MENU"]
    assert late.count("KEY_MENU") > 1.5 * max(others)


def test_bursts_that_found_new_screens_come_back_mutated() -> None:
    w = Walker(random.Random(3), KEYS, WalkOptions(mutate=0.5, power_cut=0, power_cycle=0))
    found = [Event("key", "KEY_CHANNELUP", 0.1), Event("key", "KEY_CHANNELUP", 0.9)]
    w.learn("live", found, "banner", new=True)
    bursts = [w.burst("live") for _ in range(100)]
    related = [b for b in bursts if [e.arg for e in b][:2] == ["KEY_CHANNELUP", "KEY_CHANNELUP"]]
    assert len(related) >= 15
    assert any(len(b) == 3 for b in related)  # a key added after the two zaps
    assert any(all(e.gap <= 0.25 for e in b[1:]) for b in related)  # the same keys at hostile speed


def test_power_events_and_hostile_gaps_are_drawn() -> None:
    w = Walker(random.Random(2), KEYS, WalkOptions(power_cut=0.2))
    bursts = [w.burst("s") for _ in range(200)]
    kinds = {e.kind for b in bursts for e in b}
    gaps = [e.gap for b in bursts for e in b[1:]]
    assert "power_cut" in kinds
    assert any(g < 0.25 for g in gaps) and any(g > 0.4 for g in gaps)
