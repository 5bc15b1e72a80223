"""Network scenarios need the emulated box's IPTV path on a namespaced link (see issue 5).

``iptv_link`` proves the box really sits on the rig's link before a scenario impairs it: after
``tune N`` the box's interface in the namespace must have joined channel N's multicast group
(``ip maddr``). Otherwise the scenario is skipped with the reason -- never passed or failed on a
link the picture does not cross.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest

from lab.emulator.headend import ChannelMap
from lab.network.netns import NO_NETNS_REASON, RigLink, attach_link, netns_available

IPTV_MISSING = (
    "the rig's box has no IPTV link: the emulator must build the rig's namespace and run the headend "
    "and receiver (lab.emulator.iptv.RigIptv, wired in lab/emulator/box.py) so shaping reaches the picture"
)


def joined_groups(link: RigLink) -> set[str]:
    """Multicast groups the box's interface has joined (IGMP state in the box's namespace)."""
    out = subprocess.run(
        ["ip", "-n", str(link.namespace), "maddr", "show", "dev", link.box_if], capture_output=True, text=True
    ).stdout
    return {parts[1] for parts in (line.split() for line in out.splitlines()) if len(parts) > 1 and parts[0] == "inet"}


@pytest.fixture
def iptv_link(rig: Any, stb: Any) -> RigLink:
    """The link the box's IPTV stream crosses, proven by the box's own IGMP join; else skip."""
    if not netns_available():
        pytest.skip(NO_NETNS_REASON)
    if rig.network is None or not rig.network.namespace:
        pytest.skip(f"rig {rig.name} has no network.namespace in its rig file")
    link = attach_link(rig)
    if link is None:
        pytest.skip(IPTV_MISSING)
    group = ChannelMap.default().channels[0].group
    stb.run("tune 1").check()
    end = time.monotonic() + 3
    while group not in joined_groups(link):
        if time.monotonic() > end:
            pytest.skip(f"{IPTV_MISSING} (after `tune 1` the box did not join {group})")
        time.sleep(0.1)
    return link
