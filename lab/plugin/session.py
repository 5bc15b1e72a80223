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
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.device import Stb
from lab.device_health import RigHealth
from lab.emulated_lab import EMULATE_MODES, answers
from lab.errors import InfraError, RigFileError
from lab.rig import Rig, load_rigs, select_rigs


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


@dataclass
class _Held:
    """A rig this session holds: its lock, the emulator started for it, its Stb."""

    rig: Rig
    lock: RigLock
    emulator: Any = None
    stb: Stb | None = None


class LabSession:
    """The rig this process drives and everything attached to it, for one pytest session.

    ``home`` is the rig the session claimed; ``rig`` the one tests drive right now (the home rig,
    or a twin of the same model borrowed for reproduction reruns with :meth:`borrowed`).
    """

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
        home, lock = claim_rig(candidates)
        self.home = self.rig = home
        self._held: dict[str, _Held] = {home.name: _Held(home, lock)}
        self.run_dir = run_dir
        self.emulate = emulate
        self.boot_timeout = boot_timeout
        self.trust_new_ssh_key = trust_new_ssh_key
        self.health = RigHealth()
        self._lock = threading.Lock()

    # -- emulator --------------------------------------------------------------------------

    def needs_emulator(self, rig: Rig | None = None) -> bool:
        """True when this session must start the rig's emulator (per ``--emulate``)."""
        rig = rig or self.rig
        if not rig.emulated or self.emulate == "never":
            return False
        if self.emulate == "always":
            return True
        return not answers(rig, timeout=0.5)

    def start_emulator(self, rig: Rig | None = None) -> None:
        """Start ``stblab emulate`` for a held rig (stopped again by :meth:`close`)."""
        from lab.emulator.testing import EmulatedLab, EmulatorFailed

        rig = rig or self.rig
        emu = EmulatedLab(self.rigs_file, rigs=[rig.name])
        try:
            emu.start()
        except EmulatorFailed as exc:  # the lab failing, never the box
            raise InfraError(f"could not start the emulator: {exc}", rig=rig.name, instrument="emulator") from exc
        self._held[rig.name].emulator = emu

    @property
    def emulator(self) -> Any:
        """The running :class:`lab.emulator.testing.EmulatedLab` started for the current rig, or None."""
        return self._held[self.rig.name].emulator

    # -- device ----------------------------------------------------------------------------

    def stb(self) -> Stb:
        """The current rig's :class:`Stb` (emulator started and console opened on first call).

        Raises :class:`InfraError` at once when the rig went bad earlier in the session.
        """
        with self._lock:
            held = self._held[self.rig.name]
            self.health.check(held.rig.name)
            if held.stb is None:
                try:
                    if self.needs_emulator(held.rig):
                        self.start_emulator(held.rig)
                except InfraError as exc:
                    self.health.mark_bad(held.rig.name, exc, test="session start")
                    raise
                stb = Stb(
                    held.rig,
                    run_dir=self.run_dir,
                    health=self.health,
                    boot_timeout=self.boot_timeout,
                    trust_new_ssh_key=self.trust_new_ssh_key,
                )
                stb.open()
                held.stb = stb
            return held.stb

    @property
    def stb_if_open(self) -> Stb | None:
        """The current rig's Stb when a test has opened it, else None (evidence must not start instruments)."""
        return self._held[self.rig.name].stb

    # -- a twin for reproduction -------------------------------------------------------------

    def claim_twin(self, skip: set[str] | frozenset[str] = frozenset()) -> Rig | None:
        """Claim another free rig of the home rig's model from the rig file (None when none is free);
        rigs named in ``skip`` (already tried) are passed over."""
        for rig in self.rigs.values():
            if rig.name in self._held or rig.name in skip or rig.model != self.home.model:
                continue
            lock = RigLock(rig)
            if lock.acquire():
                self._held[rig.name] = _Held(rig, lock)
                return rig
        return None

    def release(self, rig: Rig) -> None:
        """Give a claimed twin back (close its Stb, stop its emulator, drop its lock)."""
        if rig.name == self.home.name:
            raise ValueError("the home rig is released by close()")
        held = self._held.pop(rig.name, None)
        if held is not None:
            self._release(held)

    @contextlib.contextmanager
    def borrowed(self, rig: Rig) -> Iterator[Stb]:
        """Drive a claimed twin for the duration of the block (fixtures then hand out its Stb)."""
        if rig.name not in self._held:
            raise ValueError(f"rig {rig.name} is not held by this session")
        previous = self.rig
        self.rig = rig
        try:
            yield self.stb()
        finally:
            self.rig = previous

    @staticmethod
    def _release(held: _Held) -> None:
        if held.stb is not None:
            held.stb.close()
        if held.emulator is not None:
            held.emulator.stop()
        held.lock.release()

    def close(self) -> None:
        """Close every Stb, stop the emulators this session started, release the rigs."""
        self.rig = self.home
        for name in list(self._held):
            self._release(self._held.pop(name))


def worker_identity(workerinput: dict[str, Any] | None) -> tuple[str | None, int | None]:
    """The xdist worker id and worker count from this config's ``workerinput`` (None, None without
    xdist). Not from the environment: a pytest run started inside an xdist worker (pytester, the
    runner's subprocesses) inherits PYTEST_XDIST_WORKER without being a worker itself."""
    if not workerinput:
        return None, None
    count = workerinput.get("workercount")
    return workerinput.get("workerid"), int(count) if count is not None else None


__all__ = ["EMULATE_MODES", "LabSession", "RigLock", "assign_rig", "claim_rig", "worker_identity"]
