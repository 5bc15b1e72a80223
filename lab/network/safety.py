"""The traffic safety rule: generated packets go only to the lab's own addresses.

A rig file names them (``network.lab_addresses``); a :class:`TrafficPolicy` checks every
destination (and, for layer-2 storms, the interface) *before* a packet is built or sent, and raises
:class:`UnsafeTraffic` otherwise. Link-local multicast (224.0.0.0/24, IGMP and friends) and the
limited broadcast never leave the link, so they are allowed on an allowed interface only.

Example::

    policy = TrafficPolicy.for_link(link)          # addresses from the rig, interface from the link
    policy.check_destination("10.231.1.2")         # ok
    policy.check_destination("8.8.8.8")            # raises UnsafeTraffic
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from lab.errors import TestError
from lab.network.netns import RigLink

_LINK_LOCAL_MC = ipaddress.ip_network("224.0.0.0/24")
_LIMITED_BCAST = ipaddress.ip_address("255.255.255.255")


class UnsafeTraffic(TestError):
    """A scenario asked to send traffic outside the rig's lab addresses or interface."""


@dataclass(frozen=True)
class TrafficPolicy:
    """Destinations and interfaces a rig's generators may use."""

    rig_name: str
    lab_addresses: tuple[str, ...]
    interfaces: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def for_link(cls, link: RigLink) -> TrafficPolicy:
        """The policy of a rig's link: its lab_addresses, and its lab-side interface (or ``lo``)."""
        nets = tuple(link.config.lab_addresses)
        iface = link.lab_if if link.namespace else "lo"
        return cls(link.rig_name, nets, frozenset({iface} if iface else set()))

    def _nets(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(n, strict=False) for n in self.lab_addresses]

    def allows(self, address: str, *, on_link: bool = False) -> bool:
        """True when ``address`` may be a destination (``on_link``: a layer-2 send on an allowed interface)."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if on_link and (ip in _LINK_LOCAL_MC or ip == _LIMITED_BCAST):
            return True
        return any(ip in net for net in self._nets())

    def check_destination(self, address: str, *, on_link: bool = False) -> None:
        """Raise :class:`UnsafeTraffic` unless ``address`` is one of the lab's own."""
        if not self.allows(address, on_link=on_link):
            raise UnsafeTraffic(
                f"rig {self.rig_name}: refusing to send to {address}: not in the rig's network.lab_addresses "
                f"({', '.join(self.lab_addresses) or 'none listed'})"
            )

    def check_interface(self, ifname: str) -> None:
        """Raise :class:`UnsafeTraffic` unless ``ifname`` is the rig's own lab-side interface."""
        if ifname not in self.interfaces:
            raise UnsafeTraffic(
                f"rig {self.rig_name}: refusing to send on interface {ifname!r}: only the rig's own link "
                f"({', '.join(sorted(self.interfaces)) or 'none'}) carries generated traffic"
            )


__all__ = ["TrafficPolicy", "UnsafeTraffic"]
