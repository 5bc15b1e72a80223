"""Kernel rate limiting with ``tbf``: for profiles that only limit the rate.

A profile whose only impairment is ``rate`` (and its ``queue``) needs no userspace path: a token
bucket filter on the egress of the middle veths does it in the kernel at any speed, while the
kernel bridge keeps carrying the frames. Downstream is the egress of ``box_peer``, upstream the
egress of ``mid``.

Example::

    if rate_only(profile): TbfBackend(link).apply(profile)
"""

from __future__ import annotations

import subprocess

from lab.errors import InfraError
from lab.network.netns import RigLink
from lab.network.profile import Profile

MTU_FRAME = 1514


def rate_only(p: Profile) -> bool:
    """True when ``p`` limits the rate and does nothing else the kernel bridge cannot."""
    return bool(p.rate) and p.model_copy(update={"rate": None}).is_clean


def tbf_args(p: Profile) -> list[str]:
    """``tc qdisc ... tbf`` arguments: rate, a burst of ~4 ms or 2 frames, a queue of ``queue`` frames."""
    assert p.rate
    rate_bits = p.rate * 1000
    burst = max(2 * MTU_FRAME, int(rate_bits / 8 * 0.004))
    return ["rate", f"{p.rate:g}kbit", "burst", str(burst), "limit", str(p.queue * MTU_FRAME)]


class TbfBackend:
    """Apply a rate-only profile with tbf on the rig's middle veths."""

    name = "tbf"

    def __init__(self, link: RigLink) -> None:
        self.link = link

    def _devs(self, p: Profile) -> list[str]:
        devs = []
        if p.direction in ("both", "downstream"):
            devs.append(str(self.link.box_peer))
        if p.direction in ("both", "upstream"):
            devs.append(str(self.link.mid_if))
        return devs

    def apply(self, p: Profile) -> None:
        for dev in self._devs(p):
            proc = subprocess.run(
                ["tc", "qdisc", "replace", "dev", dev, "root", "tbf", *tbf_args(p)], capture_output=True, text=True
            )
            if proc.returncode != 0:
                self.clear()
                raise InfraError(
                    f"tc tbf on {dev} failed: {proc.stderr.strip()}", rig=self.link.rig_name, instrument="network"
                )

    def clear(self) -> None:
        for dev in (self.link.box_peer, self.link.mid_if):
            if dev:
                subprocess.run(["tc", "qdisc", "del", "dev", dev, "root"], capture_output=True)

    def counters(self) -> dict[str, object]:
        """Sent/dropped as the kernel counts them, per direction."""
        out: dict[str, object] = {}
        for name, dev in (("downstream", self.link.box_peer), ("upstream", self.link.mid_if)):
            proc = subprocess.run(["tc", "-s", "-j", "qdisc", "show", "dev", str(dev)], capture_output=True, text=True)
            try:
                import json

                q = json.loads(proc.stdout)[0]
                out[name] = {"sent": q.get("packets", 0), "dropped_queue": q.get("drops", 0)}
            except (ValueError, IndexError, KeyError):
                continue
        return out


__all__ = ["TbfBackend", "rate_only", "tbf_args"]
