"""What a written reproducer (``scenarios/found/*.py``) calls: a known state, pauses, the checks.

Example::

    box = known_state(stb, network=request)   # power cycle to a shell and a picture, clean link
    remote.press("KEY_CHANNELUP")
    pause(0.120)
    box.network("lossy-2pct")       # the rig's link impaired from here on
    remote.press("KEY_CHANNELUP")
    box.expect_no_fault()           # DeviceFault(symptom="video-frozen") when the fault is back
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from lab.errors import TestError
from lab.explore.events import Event
from lab.explore.observe import load_regions
from lab.explore.target import MAX_GAP, RigTarget


class KnownState:
    """The rig brought to a known state, with the explorer's checks for the end of the replay."""

    def __init__(self, stb: Any, network: Any | None = None) -> None:
        self.target = RigTarget(stb, regions=load_regions(stb.rig.model), reboot="power", network=network)
        self.target.reset()
        # Learn what "moving" looks like on the first screen, as the explorer did before its steps.
        self.target.check()

    def power_cut(self, off_seconds: float = 1.0) -> None:
        """Cut the power for ``off_seconds`` and switch it back on without waiting for the boot."""
        self.target.apply(Event("power_cut", f"{off_seconds}", 0.0))

    def power_cycle(self, off_seconds: float = 1.0) -> None:
        """Cut the power and wait for the box to boot to its shell again."""
        self.target.apply(Event("power_cycle", f"{off_seconds}", 0.0))

    def network(self, profile: str) -> None:
        """Switch the rig's link to the impairment ``profile`` (a name in rigs/profiles; ``clean``)."""
        self.target.apply(Event("net", profile, 0.0))

    def toggled_standby(self) -> None:
        """KEY_POWER was pressed: a black picture is expected until it is pressed again."""
        self.target.standby = not self.target.standby

    def expect_no_fault(self, *, moving: bool = False) -> None:
        """Run the explorer's checks; raise DeviceFault with the symptom when the box is faulty
        (``moving``: the screen the replay ends on must show a moving picture)."""
        self.target.expect_no_fault(moving=moving)


def known_state(stb: Any, network: Any | None = None) -> KnownState:
    """Power-cycle the rig's box to a logged-in shell and a picture (see :class:`KnownState`).

    ``network``: the test's pytest ``request`` when the replay switches network profiles: the rig's
    link is opened with its shaper (:func:`lab.explore.network.rig_shaper`) for this test, clean at
    the start, and at its end the last profile applied is recorded in the test's properties
    (``net_profile``) and the link is clean again.
    """
    if network is None:
        return KnownState(stb)
    import json

    from lab.explore.network import rig_shaper

    stack = contextlib.ExitStack()
    shaper = stack.enter_context(rig_shaper(stb.rig))

    def done() -> None:
        network.node.user_properties.append(("net_profile", json.dumps(shaper.record(), sort_keys=True)))
        stack.close()

    network.addfinalizer(done)
    return KnownState(stb, network=shaper)


def pause(seconds: float) -> None:
    """Wait between two events of a reproducer (the timing is part of the reproducer)."""
    if not 0 <= seconds <= MAX_GAP:
        raise TestError(f"a pause must be within 0..{MAX_GAP} s, got {seconds}")
    time.sleep(seconds)
