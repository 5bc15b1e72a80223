"""The kernel backend: ``tc netem`` on the two middle veths, where the host has netem.

Downstream (towards the box) is the egress of ``box_peer``, upstream the egress of ``mid``; the
kernel bridge keeps carrying the frames. Outage windows are a timer that swaps in ``loss 100%``.
netem has no RNG seed on most kernels: runs on this backend repeat the profile, not the exact
packets (the record says so).

Example::

    if netem_available(): NetemBackend(link).apply(profile)
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time

from lab.errors import InfraError
from lab.network.netns import RigLink
from lab.network.profile import Profile


def netem_available(ifname: str = "lo") -> bool:
    """True when ``tc`` can attach a netem qdisc here (detected by trying, on a scratch ifb/dummy)."""
    probe = "slnetemprobe"
    try:
        subprocess.run(["ip", "link", "add", probe, "type", "dummy"], capture_output=True, timeout=5)
        proc = subprocess.run(
            ["tc", "qdisc", "add", "dev", probe, "root", "netem", "delay", "1ms"], capture_output=True, timeout=5
        )
        return proc.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(["ip", "link", "del", probe], capture_output=True, timeout=5)


def netem_args(p: Profile, *, outage: bool = False) -> list[str]:
    """The ``tc qdisc ... netem`` arguments for a profile (``outage`` = the link is down)."""
    args = ["limit", str(p.queue)]
    if p.delay:
        args += ["delay", f"{p.delay:g}ms"]
        if p.jitter:
            args += [f"{p.jitter:g}ms"]
    if outage:
        args += ["loss", "100%"]
    elif p.burst is not None:
        ge = p.burst
        args += ["loss", "gemodel", f"{ge.p:g}%", f"{ge.r:g}%", f"{100 - ge.h:g}%", f"{100 - ge.k:g}%"]
    elif p.loss:
        args += ["loss", "random", f"{p.loss:g}%"]
    if p.duplicate:
        args += ["duplicate", f"{p.duplicate:g}%"]
    if p.reorder:
        args += ["reorder", f"{p.reorder:g}%"]
    if p.corrupt:
        args += ["corrupt", f"{p.corrupt:g}%"]
    if p.rate:
        args += ["rate", f"{p.rate:g}kbit"]
    return args


class NetemBackend:
    """Apply a profile with netem on the rig's middle veths."""

    name = "netem"

    def __init__(self, link: RigLink) -> None:
        self.link = link
        self._timer: threading.Thread | None = None
        self._cancel = threading.Event()

    def _devs(self, p: Profile) -> list[str]:
        devs = []
        if p.direction in ("both", "downstream"):
            devs.append(str(self.link.box_peer))
        if p.direction in ("both", "upstream"):
            devs.append(str(self.link.mid_if))
        return devs

    def _tc(self, dev: str, args: list[str]) -> None:
        proc = subprocess.run(["tc", "qdisc", "replace", "dev", dev, "root", "netem", *args], capture_output=True)
        if proc.returncode != 0:
            raise InfraError(
                f"tc netem on {dev} failed: {proc.stderr.decode(errors='replace').strip()}",
                rig=self.link.rig_name,
                instrument="network",
            )

    def apply(self, p: Profile) -> None:
        self.clear()
        for dev in self._devs(p):
            self._tc(dev, netem_args(p))
        if p.outages:
            self._cancel.clear()
            self._timer = threading.Thread(target=self._outages, args=(p, time.monotonic()), daemon=True)
            self._timer.start()

    def _outages(self, p: Profile, t0: float) -> None:
        for o in sorted(p.outages, key=lambda o: o.start):
            if self._cancel.wait(max(0.0, t0 + o.start - time.monotonic())):
                return
            for dev in self._devs(p):
                self._tc(dev, netem_args(p, outage=True))
            if self._cancel.wait(o.duration):
                return
            for dev in self._devs(p):
                self._tc(dev, netem_args(p))

    def clear(self) -> None:
        self._cancel.set()
        if self._timer:
            self._timer.join(timeout=2)
            self._timer = None
        for dev in (self.link.box_peer, self.link.mid_if):
            if dev:
                subprocess.run(["tc", "qdisc", "del", "dev", dev, "root"], capture_output=True)

    def counters(self) -> dict[str, object]:
        return {}


__all__ = ["NetemBackend", "netem_args", "netem_available"]
