"""One interface to impair a rig's link: ``Shaper(link).apply(profile)`` / ``.clear()``.

The backend is picked by what the host supports: netem through ``tc`` when the kernel has it
(detected by trying, not assumed), otherwise the userspace bridge (AF_PACKET between the two
middle veths, seeded RNG). A profile that only limits the rate goes to the kernel's tbf on either
host. While no profile is applied the kernel bridge carries the link.

Example::

    with open_link(rig) as link:
        shaper = Shaper(link)
        shaper.apply(load_profile("lossy-2pct"))
        ...
        record = shaper.record()     # {'profile': {...}, 'backend': 'userspace', 'counters': {...}}
        shaper.clear()
"""

from __future__ import annotations

import logging
import time
from typing import Any

from lab.errors import InfraError, TestError
from lab.network.impair.netem import NetemBackend, netem_available
from lab.network.impair.tbf import TbfBackend, rate_only
from lab.network.impair.userspace import UserspaceBridge
from lab.network.netns import NO_NETNS_REASON, RigLink
from lab.network.profile import Profile, load_profile
from lab.steps import step

log = logging.getLogger("stblab.network.shaper")

_NETEM: bool | None = None


def pick_backend() -> str:
    """``netem`` when the kernel has it, else ``userspace`` (cached per process)."""
    global _NETEM
    if _NETEM is None:
        _NETEM = netem_available()
    return "netem" if _NETEM else "userspace"


class Shaper:
    """Applies impairment profiles to one rig's link.

    ``backend``: "auto" (default), "netem" or "userspace".
    """

    def __init__(self, link: RigLink, backend: str = "auto") -> None:
        if backend not in ("auto", "netem", "userspace"):
            raise TestError(f"unknown shaper backend '{backend}' (auto, netem, userspace)")
        self.link = link
        self.rig_name = link.rig_name
        self.backend = pick_backend() if backend == "auto" else backend
        self.profile: Profile = Profile()
        self.applied_at: float | None = None
        self._bridge: UserspaceBridge | None = None
        self._netem: NetemBackend | None = None
        self._tbf: TbfBackend | None = None
        self.active_backend = "none"
        self._last_counters: dict[str, Any] = {}

    @step("network")
    def apply(self, profile: Profile | str) -> Profile:
        """Impair the link with ``profile`` (a Profile, a name in rigs/profiles or a path)."""
        p = load_profile(profile)
        if not self.link.shaping:
            if p.is_clean:
                self.profile = p
                return p
            raise InfraError(
                f"cannot apply profile '{p.name}': {NO_NETNS_REASON}", rig=self.rig_name, instrument="network"
            )
        self.clear()
        self.applied_at = time.monotonic()
        self.active_backend = "none"
        if not p.is_clean:
            if rate_only(p):
                # the kernel's token bucket does a pure rate limit at any speed; the bridge stays
                self._tbf = TbfBackend(self.link)
                self._tbf.apply(p)
                self.applied_at = time.monotonic()
                self.active_backend = "tbf"
            elif self.backend == "netem":
                self._netem = NetemBackend(self.link)
                self._netem.apply(p)
                self.applied_at = time.monotonic()
                self.active_backend = "netem"
            else:
                self.link.bridge_down()
                try:
                    self._bridge = UserspaceBridge(str(self.link.box_peer), str(self.link.mid_if), p).start()
                    self.applied_at = self._bridge.start_time
                    self.active_backend = "userspace"
                except OSError as exc:
                    self.link.bridge_up()
                    raise InfraError(
                        f"userspace shaper failed: {exc}", rig=self.rig_name, instrument="network"
                    ) from exc
        self.profile = p
        log.info("rig %s: network profile %s applied (%s)", self.rig_name, p.name, self.active_backend)
        return p

    @step("network")
    def clear(self) -> None:
        """Back to the clean link."""
        if self._bridge is not None:
            self._last_counters = self._bridge.counters()
            self._bridge.stop()
            self._bridge = None
            self.link.bridge_up()
        if self._netem is not None:
            self._netem.clear()
            self._netem = None
        if self._tbf is not None:
            self._last_counters = self._tbf.counters()
            self._tbf.clear()
            self._tbf = None
        self.profile = Profile()
        self.applied_at = None
        self.active_backend = "none"

    def counters(self) -> dict[str, Any]:
        """What the shaper did so far (userspace backend): per direction received/sent/dropped/..."""
        if self._bridge is not None:
            return self._bridge.counters()
        if self._tbf is not None:
            return self._tbf.counters()
        return dict(self._last_counters)

    def record(self) -> dict[str, Any]:
        """The active profile with the backend and counters: stored with a result."""
        return {
            "profile": self.profile.as_record(),
            "backend": self.active_backend if self.link.shaping else "none (loopback-only)",
            "seeded": self.active_backend == "userspace",
            "counters": self.counters(),
        }

    def __enter__(self) -> Shaper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.clear()


__all__ = ["Shaper", "pick_backend"]
