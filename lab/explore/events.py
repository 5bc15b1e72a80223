"""What the explorer does to a box: events with the pause before each one.

An :class:`Event` is one action (an IR key, a power event, a shell command, a switch of the rig's
network impairment profile, a pause) and ``gap``,
the seconds waited before it. Sequences are plain lists, saved as JSON and written as Python.

Example::

    seq = [Event("key", "KEY_CHANNELUP", 0.8), Event("key", "KEY_CHANNELUP", 0.1)]
    text = dumps(seq)
    assert loads(text) == seq
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Literal

Kind = Literal["key", "power_cycle", "power_cut", "shell", "net", "wait"]
KINDS: tuple[str, ...] = ("key", "power_cycle", "power_cut", "shell", "net", "wait")

#: the pause the shrinker tries in place of a short one: "a human's pace" (s)
RELAXED_GAP = 1.0


@dataclass(frozen=True)
class Event:
    """One action and the pause before it (s). ``arg``: the key, the shell command, the off time,
    the network profile's name (``net``: a name in rigs/profiles, ``clean`` for none) or the pause
    length."""

    kind: Kind
    arg: str = ""
    gap: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown event kind {self.kind!r} (one of {', '.join(KINDS)})")
        if not 0 <= self.gap <= 3600:
            raise ValueError(f"event gap must be within 0..3600 s, got {self.gap!r}")

    def relaxed(self) -> Event:
        """The same action at a human's pace (a gap of at least :data:`RELAXED_GAP`)."""
        return replace(self, gap=max(self.gap, RELAXED_GAP))

    def describe(self) -> str:
        """One short line for progress and reports, e.g. ``+0.12s KEY_OK``."""
        what = {
            "key": self.arg,
            "power_cycle": f"power cycle (off {self.arg or 'default'} s)",
            "power_cut": f"power cut {self.arg} s",
            "shell": f"shell: {self.arg}",
            "net": f"network profile {self.arg}",
            "wait": f"wait {self.arg} s",
        }[self.kind]
        return f"+{self.gap:.2f}s {what}"


def dumps(events: list[Event]) -> str:
    """A sequence as JSON (a list of objects), for the RMA evidence and ``--replay``."""
    return json.dumps([asdict(e) for e in events], indent=1)


def loads(text: str) -> list[Event]:
    """The inverse of :func:`dumps`; raises ValueError naming the entry that is wrong."""
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("an event sequence is a JSON list")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ValueError(f"event {i}: expected an object, got {type(item).__name__}")
        try:
            out.append(Event(kind=item["kind"], arg=str(item.get("arg", "")), gap=float(item.get("gap", 0.0))))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"event {i}: {exc}") from None
    return out
