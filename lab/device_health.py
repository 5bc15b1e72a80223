"""Rig health for one session, LAVA-style: an infra error makes a rig *bad* until the session ends.

A rig starts ``unknown``; it becomes ``good`` once the box reached a shell, and ``bad`` the moment
an instrument fails (an :class:`~lab.errors.InfraError`). Later tests on a bad rig error at once
with the original reason instead of hammering a dead instrument, and the reason is never blamed
on the box.

Example::

    health = RigHealth()
    health.mark_bad("stb-a", InfraError("no answer", rig="stb-a", instrument="serial"), test="t1")
    health.check("stb-a")   # raises InfraError("rig stb-a is unhealthy since t1: ...")
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from lab.errors import InfraError

GOOD, UNKNOWN, BAD = "good", "unknown", "bad"


class RigUnhealthy(InfraError):
    """Refused: the rig went bad earlier in the session (the original reason is in the message).

    Nothing touched the box, so there is no evidence of its own to collect."""


@dataclass(frozen=True)
class HealthRecord:
    """Why and when a rig went bad."""

    rig: str
    reason: str
    instrument: str | None
    test: str | None
    at: float


class RigHealth:
    """Health of the rigs used in one session (thread-safe; one object per session, not global)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: dict[str, str] = {}
        self._bad: dict[str, HealthRecord] = {}

    def status(self, rig: str) -> str:
        """``good``, ``unknown`` or ``bad``."""
        with self._lock:
            return self._status.get(rig, UNKNOWN)

    def mark_good(self, rig: str) -> None:
        """The box answered through its instruments (never overrides ``bad``)."""
        with self._lock:
            if self._status.get(rig) != BAD:
                self._status[rig] = GOOD

    def mark_bad(self, rig: str, error: InfraError | str, *, test: str | None = None) -> HealthRecord:
        """Record an infra failure; the first reason is kept (later ones are consequences)."""
        reason = error.message if isinstance(error, InfraError) else str(error)
        instrument = error.instrument if isinstance(error, InfraError) else None
        with self._lock:
            self._status[rig] = BAD
            if rig not in self._bad:
                self._bad[rig] = HealthRecord(
                    rig, reason.splitlines()[0] if reason else "", instrument, test, time.time()
                )
            return self._bad[rig]

    def absolve(self, rig: str) -> None:
        """Undo :meth:`mark_bad` when the scenario proved the box, not the lab, was at fault
        (e.g. the box's sshd died while its console still answers)."""
        with self._lock:
            self._bad.pop(rig, None)
            self._status[rig] = UNKNOWN

    def record(self, rig: str) -> HealthRecord | None:
        """The record that made ``rig`` bad, or None."""
        with self._lock:
            return self._bad.get(rig)

    def bad(self) -> list[HealthRecord]:
        """All rigs that went bad this session, in order."""
        with self._lock:
            return sorted(self._bad.values(), key=lambda r: r.at)

    def check(self, rig: str) -> None:
        """Raise :class:`RigUnhealthy` (an InfraError) when ``rig`` is bad, naming the original reason and test."""
        rec = self.record(rig)
        if rec is not None:
            since = f" since {rec.test}" if rec.test else ""
            raise RigUnhealthy(
                f"rig is unhealthy{since}: {rec.reason} (not retried for the rest of the session)",
                rig=rig,
                instrument=rec.instrument,
            )


__all__ = ["BAD", "GOOD", "UNKNOWN", "HealthRecord", "RigHealth", "RigUnhealthy"]
