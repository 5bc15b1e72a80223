"""Writing a found fault as a readable pytest scenario a firmware engineer can replay.

The file ``scenarios/found/test_<title>_<seed>.py`` has one ``remote.press`` / ``power`` /
``box.network`` (the rig's impairment profile) line per event with the pauses between them, the
seed, rig, firmware and profile in its docstring, and the
same checks the explorer used (:func:`lab.explore.replay.known_state`). It runs with the stblab
plugin like any scenario: ``pytest --rigs rigs/emulated.yaml --rig stb-b scenarios/found/...``.

Example::

    path = write_scenario(out_dir, title="video-frozen", seed=7, events=minimal, meta={...})
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab.explore.events import Event


def slug(text: str) -> str:
    """A lowercase identifier made of the title's words (``video-frozen`` -> ``video_frozen``)."""
    s = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return (s or "fault")[:40]


def _line(e: Event) -> list[str]:
    lines = []
    if e.gap > 0:
        lines.append(f"    pause({e.gap:.3f})")
    if e.kind == "key":
        lines.append(f"    remote.press({e.arg!r})")
        if e.arg == "KEY_POWER":
            lines.append("    box.toggled_standby()")
    elif e.kind == "power_cut":
        lines.append(f"    box.power_cut(off_seconds={float(e.arg or 1.0):.2f})")
    elif e.kind == "power_cycle":
        lines.append(f"    box.power_cycle(off_seconds={float(e.arg or 1.0):.2f})")
    elif e.kind == "net":
        lines.append(f"    box.network({(e.arg or 'clean')!r})")
    elif e.kind == "shell":
        lines.append(f"    stb.run({e.arg!r})")
    elif e.kind == "wait":
        lines.append(f"    pause({float(e.arg or 0):.3f})")
    return lines


def render_scenario(*, title: str, seed: int, events: Sequence[Event], meta: Mapping[str, object]) -> str:
    """The scenario's source text (see module docstring)."""
    name = f"test_{slug(title)}_seed{seed}"
    features = ["ir", "hdmi"] if any(e.kind == "key" for e in events) else ["hdmi"]
    doc = [f"Found by `stblab explore --seed {seed}`: {title}.", ""]
    doc += [f"{k}: {v}" for k, v in meta.items()]
    doc += ["", "Replays the minimal event sequence from a known state (a power cycle) and runs the explorer's checks."]
    body = "\n".join(line for e in events for line in _line(e))
    # A frozen picture is judged on a screen that moves: the explorer saw the last screen move.
    check = "box.expect_no_fault(moving=True)" if title == "video-frozen" else "box.expect_no_fault()"
    docstring = "\n".join(doc).replace('"""', "'''")
    # A walk that switched network profiles replays on the rig's shaper, from the clean link.
    networked = any(e.kind == "net" for e in events)
    fixtures = "stb, remote, capture, request" if networked else "stb, remote, capture"
    start = "known_state(stb, network=request)" if networked else "known_state(stb)"
    return f'''"""{docstring}
"""

from __future__ import annotations

import pytest

from lab.explore.replay import known_state, pause


@pytest.mark.stb(features={features!r})
def {name}({fixtures}):
    """{title}: {len(events)} events from a known state."""
    box = {start}  # the pauses below are the timing: the remote's own pacing is off
{body}
    {check}
'''


def write_scenario(
    out_dir: Path, *, title: str, seed: int, events: Sequence[Event], meta: Mapping[str, object]
) -> Path:
    """Write the scenario file (replacing one of the same title and seed) and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"test_{slug(title)}_seed{seed}.py"
    path.write_text(render_scenario(title=title, seed=seed, events=events, meta=meta))
    return path
