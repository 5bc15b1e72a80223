"""The rig's network shaper for the explorer and its written reproducers.

:func:`rig_shaper` opens the rig's link (the one its emulator or ``stblab net up`` built, else one
built for the exploration, with the lab's IPTV headend on it when the rig is an emulated IPTV box,
as the network scenarios do) and yields a :class:`~lab.network.impair.shaper.Shaper` on it; on exit
the link is clean again and whatever was built is removed.

Example::

    with rig_shaper(rig) as shaper:
        shaper.apply("lossy-2pct")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from lab.errors import TestError
from lab.rig import Rig


@contextlib.contextmanager
def rig_shaper(rig: Rig) -> Iterator[Any]:
    """The rig's network shaper, on the link its emulator (or ``stblab net up``) built, else on one
    built here for the exploration, with the lab's IPTV headend on it when the rig is an emulated
    IPTV box (as the network scenarios do), so an impaired link impairs what the box shows.
    TestError when the rig has no link that can be shaped."""
    from lab.network.impair.shaper import Shaper
    from lab.network.netns import NO_NETNS_REASON, attach_link, netns_available, open_link

    if rig.network is None or not rig.network.namespace:
        raise TestError(f"rig {rig.name} has no network.namespace in its rig file: its link cannot be impaired")
    if not netns_available():
        raise TestError(f"rig {rig.name}: {NO_NETNS_REASON}")
    with contextlib.ExitStack() as stack:
        link = attach_link(rig)
        if link is None:
            link = open_link(rig)
            stack.callback(link.down)
            iptv = (rig.emulate.model_extra or {}).get("iptv") if rig.emulate is not None else None
            if isinstance(iptv, dict):
                from lab.emulator.headend import ChannelMap, Headend

                cmap = ChannelMap.load(iptv["channel_map"]) if iptv.get("channel_map") else ChannelMap.default()
                headend = Headend(cmap, interface_ip=link.lab_ip, on_demand_interface=link.lab_if).start()
                stack.callback(headend.stop)
        shaper = Shaper(link)
        stack.callback(shaper.clear)
        yield shaper
