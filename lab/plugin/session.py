"""One lab session: which rig this pytest process drives, its emulator (if any), its Stb and health.

Validate before touching hardware (LAVA): the rig file is loaded and the rig chosen when the
session starts; a bad file, an unknown selector or more xdist workers than rigs is a clear usage
error before any test runs.

With pytest-xdist each worker takes its own rig: worker ``gwN`` drives the N-th selected rig.
Without xdist the session drives the first selected rig that no other session holds
(:class:`RigLock`: two sessions never drive one rig at once).

Example::

    lab = LabSession(rigs_file="rigs/emulated.yaml", selector="stb-a", run_dir=Path("reports/x"))
    stb = lab.stb()          # starts the emulator when needed, opens the console
    ...
    lab.close()
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lab.device import Stb
from lab.device_health import RigHealth
from lab.errors import InfraError, RigFileError
from lab.rig import Rig, load_rigs, select_rigs

EMULATE_MODES = ("auto", "always", "never")


def assign_rig(selected: list[Rig], worker_id: str | None, worker_count: int | None) -> Rig:
    """The rig a process drives: ``gwN`` takes the N-th selected rig; no xdist takes the first.

    Raises :class:`RigFileError` when there are more workers than rigs.
    """
    if not selected:
        raise RigFileError("no rig selected")
    if not worker_id:
        return selected[0]
    count = worker_count or 1
    if count > len(selected):
        names = ", ".join(r.name for r in selected)
        raise RigFileError(
            f"{count} xdist workers but only {len(selected)} rig(s) selected ({names}): each worker needs its own "
            f"rig; run with -n {len(selected)} or fewer"
        )
    index = int(worker_id.removeprefix("gw")) if worker_id.removeprefix("gw").isdigit() else 0
    return selected[index]


class RigLock:
    """An exclusive, process-wide claim on a rig (``flock`` on a file), held for a session.

    Two pytest sessions never drive the same rig at once: the second one takes another free rig
    of its selection, or errors naming who holds it. The kernel releases the lock when the
    process dies, so a crashed run never leaves a rig reserved. Locks live in
    ``$STBLAB_LOCK_DIR`` (default ``/tmp/stblab-locks``).
    """

    def __init__(self, rig: Rig) -> None:
        ident = f"{rig.name}|{rig.serial.url if rig.serial else ''}|{rig.power.url if rig.power else ''}"
        digest = hashlib.sha1(ident.encode()).hexdigest()[:12]
        folder = Path(os.environ.get("STBLAB_LOCK_DIR") or Path(tempfile.gettempdir()) / "stblab-locks")
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{rig.name}-{digest}.lock"
        self.rig = rig
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the rig if it is free (never waits); True when this process holds it now."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}: {' '.join(sys.argv)[:200]}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """Who holds the rig (as written by the holder), for messages."""
        try:
            return self.path.read_text(errors="replace").strip() or "another process"
        except OSError:
            return "another process"

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def claim_rig(candidates: list[Rig]) -> tuple[Rig, RigLock]:
    """The first free rig of ``candidates`` with its lock; InfraError naming the holders when none is."""
    busy = []
    for rig in candidates:
        lock = RigLock(rig)
        if lock.acquire():
            return rig, lock
        busy.append(f"{rig.name} ({lock.holder()})")
    raise InfraError(
        "every selected rig is in use by another session: " + "; ".join(busy),
        rig=",".join(r.name for r in candidates),
        instrument="rig-lock",
    )


def _listening(url: str, timeout: float = 0.5) -> bool:
    p = urlparse(url)
    if p.scheme not in ("socket", "rfc2217", "http", "https") or not p.hostname or not p.port:
        return False
    try:
        with socket.create_connection((p.hostname, p.port), timeout=timeout):
            return True
    except OSError:
        return False


class LabSession:
    """The rig this process drives and everything attached to it, for one pytest session."""

    def __init__(
        self,
        *,
        rigs_file: str | Path,
        selector: str | None,
        run_dir: Path,
        emulate: str = "auto",
        worker_id: str | None = None,
        worker_count: int | None = None,
        boot_timeout: float = 60.0,
        trust_new_ssh_key: bool = False,
    ) -> None:
        if emulate not in EMULATE_MODES:
            raise RigFileError(f"--emulate must be one of {', '.join(EMULATE_MODES)}, not {emulate!r}")
        self.rigs_file = Path(rigs_file)
        self.rigs = load_rigs(self.rigs_file)
        self.selected = select_rigs(self.rigs, selector)
        mine = assign_rig(self.selected, worker_id, worker_count)
        # Without xdist any free selected rig will do; a worker's rig is fixed by its index.
        candidates = [mine] if worker_id else [mine] + [r for r in self.selected if r is not mine]
        self.rig, self._lock_handle = claim_rig(candidates)
        self.run_dir = run_dir
        self.emulate = emulate
        self.boot_timeout = boot_timeout
        self.trust_new_ssh_key = trust_new_ssh_key
        self.health = RigHealth()
        self._emulator: Any = None
        self._stb: Stb | None = None
        self._lock = threading.Lock()

    # -- emulator --------------------------------------------------------------------------

    def needs_emulator(self) -> bool:
        """True when this session must start the rig's emulator (per ``--emulate``)."""
        if not self.rig.emulated or self.emulate == "never":
            return False
        if self.emulate == "always":
            return True
        serial = self.rig.serial.url if self.rig.serial else None
        return not (serial and _listening(serial))

    def start_emulator(self) -> None:
        """Start ``stblab emulate`` for this session's rig (stopped again by :meth:`close`)."""
        from lab.emulator.testing import EmulatedLab, EmulatorFailed

        emu = EmulatedLab(self.rigs_file, rigs=[self.rig.name])
        try:
            emu.start()
        except EmulatorFailed as exc:  # the lab failing, never the box
            raise InfraError(f"could not start the emulator: {exc}", rig=self.rig.name, instrument="emulator") from exc
        self._emulator = emu

    @property
    def emulator(self) -> Any:
        """The running :class:`lab.emulator.testing.EmulatedLab` this session started, or None."""
        return self._emulator

    # -- device ----------------------------------------------------------------------------

    def stb(self) -> Stb:
        """The session's :class:`Stb` (emulator started and console opened on first call).

        Raises :class:`InfraError` at once when the rig went bad earlier in the session.
        """
        with self._lock:
            self.health.check(self.rig.name)
            if self._stb is None:
                try:
                    if self.needs_emulator():
                        self.start_emulator()
                except InfraError as exc:
                    self.health.mark_bad(self.rig.name, exc, test="session start")
                    raise
                stb = Stb(
                    self.rig,
                    run_dir=self.run_dir,
                    health=self.health,
                    boot_timeout=self.boot_timeout,
                    trust_new_ssh_key=self.trust_new_ssh_key,
                )
                stb.open()
                self._stb = stb
            return self._stb

    @property
    def stb_if_open(self) -> Stb | None:
        """The Stb when a test has opened it, else None (evidence must not start instruments)."""
        return self._stb

    def close(self) -> None:
        """Close the Stb and stop the emulator this session started."""
        stb, self._stb = self._stb, None
        if stb is not None:
            stb.close()
        emu, self._emulator = self._emulator, None
        if emu is not None:
            emu.stop()
        self._lock_handle.release()


def worker_identity() -> tuple[str | None, int | None]:
    """This process's xdist worker id and the worker count (None, None without xdist)."""
    wid = os.environ.get("PYTEST_XDIST_WORKER")
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    return wid, int(count) if count and count.isdigit() else None


__all__ = ["EMULATE_MODES", "LabSession", "RigLock", "assign_rig", "claim_rig", "worker_identity"]
