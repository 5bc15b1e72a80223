"""Network scenarios: the fixtures ``lab_network`` (the rig's link and the IPTV headend on it) and
``iptv_link`` (the link, proven by the box's own IGMP join) live in ``scenarios/iptv_net.py``, shared
with the robustness scenarios that run under impairment."""

from __future__ import annotations

from iptv_net import IPTV_MISSING, iptv_link, lab_network

__all__ = ["IPTV_MISSING", "iptv_link", "lab_network"]
