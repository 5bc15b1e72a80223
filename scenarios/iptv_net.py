"""The lab side of an emulated rig's IPTV link, and proof the box is on it (fixtures shared by the
network scenarios and the robustness scenarios run under impairment; their conftests import them).

``lab_network`` is the lab's network for the rig: the rig's namespace and veth link
(built here unless the emulator or ``stblab net up`` already did) and the IPTV headend on the lab
side, playing the channel map as the link's multicast router (a channel flows once the box joins).
The emulated box's receiver (``emulate.iptv`` in the rig file) joins from inside the namespace.

``iptv_link`` proves the box really sits on that link before a scenario impairs it: after
``tune 1`` the box's interface in the namespace must have joined channel 1's multicast group
(``ip maddr``). Otherwise the scenario is skipped with the reason -- never passed or failed on a
link the picture does not cross.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lab.emulator.headend import ChannelMap, Headend
from lab.network.membership import wait_for_join
from lab.network.netns import NO_NETNS_REASON, RigLink, netns_available, open_link

IPTV_MISSING = (
    "the rig's box does not receive IPTV on its link: give the emulated rig `emulate: {iptv: {}}` and a "
    "`network:` section with a namespace (the box's receiver then joins the headend's channels there)"
)


def _channel_map(rig: Any) -> ChannelMap:
    iptv = (rig.emulate.model_extra or {}).get("iptv") if rig.emulate is not None else None
    if isinstance(iptv, dict) and iptv.get("channel_map"):
        return ChannelMap.load(iptv["channel_map"])
    return ChannelMap.default()


@pytest.fixture
def lab_network(rig: Any) -> Iterator[tuple[RigLink, Headend]]:
    """The rig's link and the headend on its lab side, for one test (see module docstring)."""
    if not netns_available():
        pytest.skip(NO_NETNS_REASON)
    if rig.network is None or not rig.network.namespace:
        pytest.skip(f"rig {rig.name} has no network.namespace in its rig file")
    iptv = (rig.emulate.model_extra or {}).get("iptv") if rig.emulate is not None else None
    if iptv is None:
        pytest.skip(IPTV_MISSING)
    link = open_link(rig)  # attaches when someone else built it
    headend = Headend(_channel_map(rig), interface_ip=link.lab_ip, on_demand_interface=link.lab_if).start()
    try:
        yield link, headend
    finally:
        headend.stop()
        link.down()  # only if this session built it


@pytest.fixture
def iptv_link(lab_network: tuple[RigLink, Headend], stb: Any) -> RigLink:
    """The link the box's IPTV stream crosses, proven by the box's own IGMP join; else skip."""
    link, headend = lab_network
    group = headend.channel_map.channels[0].group
    stb.run("tune 1").check()
    if not wait_for_join(link, group, timeout=3.0):
        pytest.skip(f"{IPTV_MISSING} (after `tune 1` the box did not join {group})")
    return link
