"""The walk is reproducible from its seed and steered by what it has seen."""

from __future__ import annotations

import random

from lab.explore.events import Event
from lab.explore.walk import Walker, WalkOptions, key_family

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
    opts = WalkOptions(repeat=0.0, mutate=0.0, fast=0.0, mash=0.0, storm=0.0, power_cut=0, power_cycle=0)
    w = Walker(random.Random(1), KEYS, WalkOptions(**{**opts.__dict__, "families": False}))
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


def test_fast_runs_press_several_keys_with_every_pause_hostile() -> None:
    opts = WalkOptions(fast=1.0, mutate=0.0, mash=0.0, storm=0.0, power_cut=0, power_cycle=0)
    w = Walker(random.Random(4), KEYS, opts)
    bursts = [w.burst("live") for _ in range(50)]
    assert all(5 <= len(b) <= 12 for b in bursts)
    assert all(0.03 <= e.gap <= 0.25 for b in bursts for e in b[1:])


def test_bursts_that_changed_the_screen_lately_come_back_though_they_found_nothing_new() -> None:
    w = Walker(random.Random(5), KEYS, WalkOptions(mutate=1.0, recent=2, storm=0.0, power_cut=0, power_cycle=0))
    zaps = [Event("key", "KEY_CHANNELUP", 0.1), Event("key", "KEY_INFO", 0.2)]
    w.learn("live-1", zaps, "live-2", new=False)
    assert w.corpus == [] and w.lately == [zaps]
    assert any([e.arg for e in w.burst("live-2")][:1] == ["KEY_CHANNELUP"] for _ in range(20))
    for i in range(3):  # only the last ``recent`` are kept
        w.learn("a", [Event("key", "KEY_OK", 0.1)], f"b{i}", new=False)
    assert len(w.lately) == 2 and zaps not in w.lately


def test_power_storms_cut_again_before_the_box_can_have_booted() -> None:
    opts = WalkOptions(storm=1.0, storm_gap=(0.1, 2.0), power_cut=0, power_cycle=0)
    w = Walker(random.Random(6), KEYS, opts)
    storms = [w.burst("live") for _ in range(30)]
    assert all(3 <= len(b) <= 6 and {e.kind for e in b} == {"power_cut"} for b in storms)
    assert all(0.1 <= e.gap <= 2.0 for b in storms for e in b[1:])


REMOTE = [f"KEY_{d}" for d in range(10)] + ["KEY_UP", "KEY_DOWN", "KEY_LEFT", "KEY_RIGHT", "KEY_OK", "KEY_BACK"]
REMOTE += ["KEY_EXIT", "KEY_CHANNELUP", "KEY_CHANNELDOWN", "KEY_MENU", "KEY_HOME", "KEY_EPG", "KEY_SETUP", "KEY_INFO"]
REMOTE += ["KEY_MUTE", "KEY_POWER"]


def test_keys_fall_into_families_by_their_names() -> None:
    assert {key_family(k) for k in ("KEY_0", "KEY_9", "KEY_NUMERIC_5")} == {"digit"}
    assert key_family("KEY_CHANNELUP") == key_family("KEY_CHANNELDOWN") == "zap"
    assert key_family("KEY_SETUP") == key_family("KEY_INFO") == "menu"  # SETUP is no UP key
    assert key_family("KEY_VOLUMEUP") == key_family("KEY_MUTE") == "media"
    assert key_family("KEY_UP") == key_family("KEY_BACK") == "nav"
    assert key_family("KEY_POWER") == "power"


def test_families_keep_ten_digit_keys_from_drowning_the_two_zapping_keys() -> None:
    opts = WalkOptions(repeat=0.0, mutate=0.0, fast=0.0, mash=0.0, storm=0.0, power_cut=0, power_cycle=0)
    flat = Walker(random.Random(1), REMOTE, WalkOptions(**{**opts.__dict__, "families": False}))
    grouped = Walker(random.Random(1), REMOTE, opts)
    share, power = {}, {}
    for name, w in (("flat", flat), ("grouped", grouped)):
        keys = [e.arg for _ in range(3000) for e in w.burst("live")]
        share[name] = sum(k.startswith("KEY_CHANNEL") for k in keys) / len(keys)
        power[name] = keys.count("KEY_POWER") / len(keys)
    # 2 of 26 keys (0.077) vs a family weighed by the root of its size: sqrt(2) of 10.6 (0.13)
    assert share["flat"] < 0.095 < 0.11 < share["grouped"]
    assert power["grouped"] < 0.02 < power["flat"]  # standby is a dead end: power keys get a small share


def test_a_key_that_changed_nothing_on_a_screen_fades_there_but_not_elsewhere() -> None:
    opts = WalkOptions(repeat=0.0, mutate=0.0, fast=0.0, mash=0.0, storm=0.0, power_cut=0, power_cycle=0)
    w = Walker(random.Random(2), ["KEY_UP", "KEY_DOWN"], opts)
    for _ in range(3):
        w.learn("live", [Event("key", "KEY_UP", 0.1)], "live", new=False)
    assert w._weight("live", "KEY_UP") < 0.5 * w._weight("live", "KEY_DOWN")
    assert w._weight("menu", "KEY_UP") == w._weight("menu", "KEY_DOWN")
    w.learn("live", [Event("key", "KEY_UP", 0.1)], "menu", new=False)  # it did something after all
    assert w._weight("live", "KEY_UP") >= w._weight("live", "KEY_DOWN")


def test_mashes_press_a_small_hot_set_of_keys_fast_and_often_twice_in_a_row() -> None:
    opts = WalkOptions(mash=1.0, mutate=0.0, storm=0.0, power_cut=0, power_cycle=0)
    w = Walker(random.Random(3), REMOTE, opts)
    mashes = [w.burst("live") for _ in range(100)]
    assert all(5 <= len(m) <= 10 and 2 <= len({e.arg for e in m}) <= 3 for m in mashes)
    assert all(0.03 <= e.gap <= 0.25 for m in mashes for e in m[1:])
    doubles = sum(any(a.arg == b.arg for a, b in zip(m, m[1:], strict=False)) for m in mashes)
    assert doubles > 80
