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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.errors import InfraError
from lab.rig import Rig

if TYPE_CHECKING:
    from lab.device import Stb

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


# -- the lab is checked before the box is blamed ------------------------------------------------

#: The emulator process writes its pid here, in the rig's state folder (a file-system contract,
#: like the wire: lab.emulator.process.PID_FILE names the same file; neither imports the other).
PID_FILE = "emulator.pid"


def emulator_pid_file(rig: Rig) -> Path | None:
    """Where an emulated rig's emulator process writes its pid (None for a real rig)."""
    if rig.emulate is None or rig.emulate.state_dir is None:
        return None
    return Path(rig.emulate.state_dir) / PID_FILE


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of ``pid`` (``R``, ``S``, ``T`` stopped, ``Z`` zombie), None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[0] if ")" in stat else None


def _emulator_problem(rig: Rig) -> str | None:
    path = emulator_pid_file(rig)
    if path is None or not path.exists():
        return None  # not started by `stblab emulate` (or a real rig): nothing to tell from here
    try:
        pid = int(path.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None
    state = process_state(pid)
    if state is None or state == "Z":
        return f"its emulator process (pid {pid}) is gone"
    if state in ("T", "t"):
        return f"its emulator process (pid {pid}) is stopped and cannot answer"
    return None


def _capture_problem(capture: Any, fps: float | None, wait: float) -> str | None:
    """None when the capture receives new frames within ``wait`` (at least two frame periods)."""
    try:
        before = int(capture.stats().get("frames", 0))
    except Exception as exc:  # noqa: BLE001 - a capture that cannot say is not delivering
        return f"the capture does not answer ({exc})"
    window = max(wait, 2.0 / fps if fps else 0.0)
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        if int(capture.stats().get("frames", 0)) > before:
            return None
        time.sleep(0.05)  # polling a counter inside a bounded window
    return f"the capture delivered no new frame in {window:.1f} s"


def probe_lab(rig: Rig, stb: Stb | None = None, timeout: float = 3.0) -> InfraError | None:
    """Probe the rig's own instruments before a failure is filed against the box.

    Checks, in order: the emulator process of an emulated rig (from its pid file: gone or stopped),
    the console transport (accepts a connection), the PDU (answers a status request within
    ``timeout``) and, when the test used it, the capture (new frames arrive). Returns an
    :class:`InfraError` naming the rig and the first instrument that failed, or None when the lab is
    healthy and the failure may be the box's.
    """
    from lab.emulated_lab import url_answers

    problem = _emulator_problem(rig)
    if problem is not None:
        return InfraError(f"rig {rig.name}: {problem}", rig=rig.name, instrument="emulator")
    if rig.serial is not None and "://" in rig.serial.url and not url_answers(rig.serial.url, timeout):
        return InfraError(f"rig {rig.name}: the console transport does not accept a connection", rig=rig.name,
                          instrument="serial")  # fmt: skip
    if rig.power is not None:
        from lab.drivers.power import PowerSwitch

        try:
            PowerSwitch.from_rig(rig, timeout=timeout).status()
        except InfraError as exc:
            return InfraError(f"rig {rig.name}: the PDU does not answer: {exc.message}", rig=rig.name,
                              instrument="power")  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - any failure to read the outlet is the lab's
            return InfraError(f"rig {rig.name}: the PDU does not answer: {exc}", rig=rig.name, instrument="power")
    capture = stb.capture_if_running if stb is not None else None
    if capture is not None:
        fps = rig.video.fps if rig.video is not None else None
        problem = _capture_problem(capture, fps, timeout)
        if problem is not None:
            return InfraError(f"rig {rig.name}: {problem}", rig=rig.name, instrument="capture")
    return None


__all__ = [
    "BAD",
    "GOOD",
    "PID_FILE",
    "UNKNOWN",
    "HealthRecord",
    "RigHealth",
    "RigUnhealthy",
    "emulator_pid_file",
    "probe_lab",
    "process_state",
]
