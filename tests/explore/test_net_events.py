"""Network profile switches as explorer actions: drawn by the walk (only when profiles are given),
replayed by the shrinker with the rest of the sequence, written into the reproducer as a readable line."""

from __future__ import annotations

import ast
import random
import subprocess
import sys
from pathlib import Path

import pytest

from lab.explore.events import Event, dumps, loads
from lab.explore.reproducer import render_scenario
from lab.explore.shrink import shrink
from lab.explore.walk import Walker, WalkOptions
from lab.outcome import ExitCode

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.explore

KEYS = ["KEY_OK", "KEY_BACK", "KEY_CHANNELUP", "KEY_INFO"]
PROFILES = ("lossy-2pct", "burst-loss")


def _walk(options: WalkOptions, seed: int = 3, steps: int = 400, restart_every: int = 0) -> list[Event]:
    w = Walker(random.Random(seed), KEYS, options)
    out: list[Event] = []
    for i in range(steps):
        if restart_every and i % restart_every == 0:
            w.restart()
        burst = w.burst("home")
        out += burst
        w.learn("home", burst, "home", new=False)
    return out


def test_the_walk_switches_network_profiles_only_when_given_some() -> None:
    assert not [e for e in _walk(WalkOptions()) if e.kind == "net"]
    events = _walk(WalkOptions(net=0.1, net_profiles=PROFILES))
    switches = [e.arg for e in events if e.kind == "net"]
    assert 20 <= len(switches) <= 70, len(switches)  # ~10 % of 400 steps
    assert set(switches) == {"clean", *PROFILES}
    # a switch always changes the profile: never the same one twice in a row
    assert all(a != b for a, b in zip(switches, switches[1:], strict=False)), switches
    # the same seed switches the same way
    assert events == _walk(WalkOptions(net=0.1, net_profiles=PROFILES))


def test_a_restart_means_a_clean_link_to_the_walk() -> None:
    w = Walker(random.Random(1), KEYS, WalkOptions(net=1.0, net_profiles=("lossy-2pct",)))
    assert w.burst("home")[0].arg == "lossy-2pct"
    assert w.burst("home")[0].arg == "clean"  # the only other one
    w.net_profile = "lossy-2pct"
    w.restart()
    assert w.burst("home")[0].arg == "lossy-2pct"


def test_a_network_event_round_trips_and_reads_well() -> None:
    seq = [Event("net", "burst-loss", 0.2), Event("key", "KEY_OK", 0.1)]
    assert loads(dumps(seq)) == seq
    assert seq[0].describe() == "+0.20s network profile burst-loss"


def test_the_shrinker_keeps_a_network_switch_only_where_the_fault_needs_it() -> None:
    """A box that fails on a double zap while the link is lossy: the minimal sequence is the switch
    and the two zaps; switches that do not matter are dropped like any other event."""

    def fails(seq: list[Event]) -> bool:
        profile, zaps = "clean", 0
        for e in seq:
            if e.kind == "net":
                profile, zaps = e.arg, 0
            elif e.arg == "KEY_CHANNELUP":
                zaps += 1
                if zaps == 2 and profile == "lossy-2pct":
                    return True
            else:
                zaps = 0
        return False

    rng = random.Random(4)
    walk = [Event("key", rng.choice(KEYS[:2]), 0.1) for _ in range(30)]
    walk += [Event("net", "burst-loss", 0.3), Event("net", "lossy-2pct", 0.2)]
    walk += [Event("key", rng.choice(KEYS[:2]), 0.1) for _ in range(5)]
    walk += [Event("net", "lossy-2pct", 0.1)]
    walk += [Event("key", "KEY_CHANNELUP", 0.1), Event("key", "KEY_CHANNELUP", 0.1)]
    walk += [Event("net", "clean", 0.4)] + [Event("key", rng.choice(KEYS[:2]), 0.1) for _ in range(6)]
    assert fails(walk)
    result = shrink(walk, fails, max_runs=60)
    assert [(e.kind, e.arg) for e in result.events] == [
        ("net", "lossy-2pct"),
        ("key", "KEY_CHANNELUP"),
        ("key", "KEY_CHANNELUP"),
    ], result.events
    # replayed: without the switch the two zaps pass, so the switch was tried and kept
    assert not fails(result.events[1:])


def test_the_reproducer_switches_the_rig_link_on_its_own_line() -> None:
    events = [
        Event("key", "KEY_CHANNELUP", 0.0),
        Event("net", "lossy-2pct", 0.5),
        Event("key", "KEY_CHANNELUP", 0.12),
    ]
    text = render_scenario(title="video-frozen", seed=5, events=events, meta={"rig": "stb-tv"})
    ast.parse(text)
    lines = [line.strip() for line in text.splitlines()]
    assert "box.network('lossy-2pct')" in lines
    assert lines.index("box.network('lossy-2pct')") == lines.index("pause(0.500)") + 1
    assert "def test_video_frozen_seed5(stb, remote, capture, request):" in lines
    assert any(line.startswith("box = known_state(stb, network=request)") for line in lines)
    # without network events the reproducer needs no shaper
    plain = render_scenario(title="video-frozen", seed=5, events=[events[0], events[2]], meta={})
    assert "request" not in plain and "known_state(stb)" in plain


def test_a_profile_the_lab_does_not_have_is_bad_input_before_any_rig_is_touched() -> None:
    cmd = [sys.executable, "-m", "lab.cli", "explore", "--rigs", "rigs/emulated.yaml", "--rig", "stb-a"]
    cmd += ["--budget", "5s", "--emulate", "never", "--net-profile", "lossy-2pct", "--net-profile", "no-such-weather"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert run.returncode == int(ExitCode.BAD_INPUT), run.stdout + run.stderr
    assert "no-such-weather" in run.stderr and "lossy-2pct" in run.stderr  # names the profiles it has
