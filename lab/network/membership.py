"""The box's side of IGMP: which multicast groups its interface has joined, read in its namespace.

A network scenario proves the box sits on the link it is about to impair by waiting for the box's
own join after a tune (``ip maddr`` in the rig's namespace), not by trusting the rig file.

Example::

    stb.run("tune 1").check()
    if not wait_for_join(link, "239.1.1.1", timeout=3.0):
        pytest.skip("the box did not join channel 1's group")
"""

from __future__ import annotations

import subprocess
import time

from lab.network.netns import RigLink


def joined_groups(link: RigLink) -> set[str]:
    """Multicast groups the box's interface has joined (IGMP state in the box's namespace)."""
    out = subprocess.run(
        ["ip", "-n", str(link.namespace), "maddr", "show", "dev", link.box_if],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    return {parts[1] for parts in (line.split() for line in out.splitlines()) if len(parts) > 1 and parts[0] == "inet"}


def wait_for_join(link: RigLink, group: str, timeout: float = 3.0, interval: float = 0.1) -> bool:
    """Wait at most ``timeout`` seconds for the box's interface to join ``group``; True once it has."""
    end = time.monotonic() + timeout
    while group not in joined_groups(link):
        if time.monotonic() >= end:
            return False
        time.sleep(interval)
    return True
