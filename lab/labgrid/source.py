"""The labgrid rig source: reserve places, hold their locks, and hand the job a rig file.

``held_rig_file(url, out)`` is the whole entry for a job runner::

    from lab.labgrid.source import held_rig_file

    with held_rig_file("labgrid://coord:20408/?model=STB-4K-X1&pool=ci&count=2&wait=30m",
                       run_dir / "rigs.yaml") as held:
        run_the_job(rig_file=held.rig_file)       # per-rig pytest processes read this file
        held.check("stb-a")                       # InfraError if the lock or exporter was lost

On entry it creates one reservation per wanted place (tag filters, priority), waits (bounded by
``wait``, progress on stderr) until each is allocated, acquires each allocated place in the name of
``host/ci-<job id>`` (or the login), turns each place plus its model's facts into a rig, and
writes the derived rig file. A keepalive thread polls the reservations and watches the places:
when a place stops being ours (kicked, coordinator restarted and forgot its locks) or one of its
resources disappears (the exporter or its host died) the rig is marked lost, in memory and in the
status file ``<rig file>.labgrid.json`` that :func:`check_held` reads from any process; the rig's
tests then end as an ``InfraError`` naming the rig and "lock lost" / "exporter gone".

The locks are released (only if still ours: ``fromuser``) and the reservations cancelled on every
way out of the ``with`` block: normal exit, an exception, SIGTERM/SIGINT (the handler releases,
then behaves as before: SystemExit 143 / KeyboardInterrupt) and interpreter exit (atexit).
A SIGKILLed holder cannot release: ``stblab labgrid janitor`` frees its places.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from lab.errors import InfraError, RigFileError
from lab.labgrid.models import complete_rig, load_facts
from lab.labgrid.request import PlaceRequest, is_labgrid_url, parse_request
from lab.labgrid.resources import sections_from_resources
from lab.rig import Rig, load_rigs

STATUS_SUFFIX = ".labgrid.json"
# The environment variable naming the status file of the places a command holds (set by
# lab.jobs.rigsource, read by the plugin: its rig file may be a derived one).
STATUS_ENV = "STBLAB_LABGRID_STATUS"


class PlacesUnavailable(InfraError):
    """The wanted places were not all allocated within ``wait`` (the lab is busy, or exporters are down)."""


class LockLost(InfraError):
    """A held place stopped being ours, or its exporter went away."""


@dataclass
class HeldPlace:
    """One place this job holds: its reservation token and, once lost, why."""

    name: str
    token: str
    lost: str | None = None


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def status_path(rig_file: Path) -> Path:
    """The status file beside a derived rig file."""
    return rig_file.with_name(rig_file.name + STATUS_SUFFIX)


def check_held(rig_file: str | os.PathLike[str], rig: str) -> None:
    """Raise :class:`LockLost` (an InfraError naming the rig) when the holder marked ``rig`` lost.

    For the per-rig pytest processes: cheap (one small file), no labgrid import, no-op for rig
    files that did not come from labgrid.
    """
    path = status_path(Path(rig_file))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return
    entry = data.get("places", {}).get(rig)
    if entry and entry.get("lost"):
        raise LockLost(entry["lost"], rig=rig, instrument="labgrid")


class HeldPlaces:
    """Reservations and locks on places of one coordinator, held by this process (see module doc)."""

    def __init__(
        self,
        request: PlaceRequest,
        rig_file: Path,
        *,
        progress: Callable[[str], None] = _stderr,
        keepalive: float = 1.0,
        grace: float = 10.0,
        link: Any = None,
    ) -> None:
        self.request = request
        self.rig_file = Path(rig_file)
        self.progress = progress
        self.keepalive = keepalive
        self.grace = grace  # how long the coordinator may be unreachable before the locks count as lost
        self.held: dict[str, HeldPlace] = {}
        self.tokens: list[str] = []
        self.rigs: dict[str, Rig] = {}
        self._link = link
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._released = False
        self._old_handlers: dict[int, Any] = {}
        self.timings: dict[str, float] = {}

    @property
    def coordinator(self) -> str:
        return self.request.coordinator

    @property
    def lost(self) -> dict[str, str]:
        """Rig name -> why it was lost (empty while all is well)."""
        return {n: h.lost for n, h in self.held.items() if h.lost}

    # -- entry ---------------------------------------------------------------------------------

    def __enter__(self) -> HeldPlaces:
        self._install_handlers()
        atexit.register(self.release)
        try:
            self._acquire_all()
            self._write_rig_file()
        except BaseException:
            self.release()
            raise
        self._thread = threading.Thread(target=self._watch, name="labgrid-keepalive", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _connect(self) -> Any:
        from lab.labgrid.coordinator import CoordinatorLink

        if self._link is None:
            self._link = CoordinatorLink(self.coordinator, user=self.request.holder)
        return self._link.connect()

    def _acquire_all(self) -> None:
        t0 = time.monotonic()
        link = self._connect()
        self.timings["connect"] = time.monotonic() - t0
        places = link.places()
        want = self.request.filters
        matching = [p for p in places.values() if self.request.matches(p.name, p.tags)]
        if len(matching) < self.request.count:
            have = ", ".join(
                f"{p.name} ({','.join(f'{k}={v}' for k, v in sorted(p.tags.items()))})" for p in places.values()
            )
            raise RigFileError(
                f"{self.request.url or self.coordinator}: {len(matching)} place(s) match "
                f"{','.join(f'{k}={v}' for k, v in sorted(want.items()))}, {self.request.count} wanted "
                f"(places at {self.coordinator}: {have or 'none'})"
            )
        t1 = time.monotonic()
        for _ in range(self.request.count):
            self.tokens.append(link.create_reservation(dict(want), prio=self.request.prio).token)
        deadline = t1 + self.request.wait
        pending = list(self.tokens)
        last_line, last_shown = "", 0.0
        while True:
            for token in list(pending):
                res = link.poll_reservation(token)
                if res.state in ("allocated", "acquired") and res.allocated:
                    name = res.allocated[0]
                    link.acquire(name)
                    self.held[name] = HeldPlace(name, token)
                    pending.remove(token)
                    self.progress(f"labgrid: acquired place {name} at {self.coordinator} as {link.identity}")
                elif res.state in ("expired", "invalid"):
                    raise PlacesUnavailable(
                        f"reservation {token} for {self.request.describe()} became {res.state}", instrument="labgrid"
                    )
            if not pending:
                break
            now = time.monotonic()
            if now >= deadline:
                now_places = link.places()
                busy = [
                    f"{p.name} held by {p.acquired}" if p.acquired else f"{p.name} reserved"
                    for p in now_places.values()
                    if self.request.matches(p.name, p.tags)
                    and p.name not in self.held
                    and (p.acquired or p.reservation)
                ]
                raise PlacesUnavailable(
                    f"{len(pending)} of {self.request.count} place(s) not free within {self.request.wait:g} s "
                    f"({self.request.describe()}; {'; '.join(busy) or 'no exporter publishes their resources'})",
                    instrument="labgrid",
                )
            line = (
                f"labgrid: waiting for {self.request.describe()}: {len(self.held)} acquired, {len(pending)} waiting "
                f"[{now - t1:.0f} s of {self.request.wait:g} s]"
            )
            if line.split("[")[0] != last_line or now - last_shown >= 10:
                self.progress(line)
                last_line, last_shown = line.split("[")[0], now
            time.sleep(min(0.25, max(0.0, deadline - now)))  # poll interval, bounded by the deadline
        self.timings["reserve_acquire"] = time.monotonic() - t1

    def _write_rig_file(self) -> None:
        link = self._link
        places = link.places()
        rigs: list[dict[str, Any]] = []
        for name in sorted(self.held):
            place = places[name]
            origin = f"labgrid place '{name}' at {self.coordinator}"
            model = place.tags.get("model")
            if not model:
                raise RigFileError(f"{origin}: tag 'model': missing (set it with `stblab labgrid sync`)")
            try:
                sections = sections_from_resources(name, [(r.cls, r.params) for r in place.resources if r.avail])
            except ValueError as exc:
                raise RigFileError(f"{origin}: {exc}") from exc
            if not sections:
                raise PlacesUnavailable(
                    f"{origin}: no exporter publishes its resources", rig=name, instrument="labgrid"
                )
            facts = load_facts(self.request.models, model)
            rigs.append(complete_rig(name, model, sections, facts, origin=origin))
        self.rig_file.parent.mkdir(parents=True, exist_ok=True)
        header = (
            f"# Derived from labgrid coordinator {self.coordinator} ({self.request.describe()}); places held by "
            f"{link.identity} while the job runs. Written by lab.labgrid.source; do not edit.\n"
        )
        self.rig_file.write_text(header + yaml.safe_dump({"rigs": rigs}, sort_keys=False), encoding="utf-8")
        self.rigs = load_rigs(self.rig_file)
        self._write_status()

    # -- keepalive -----------------------------------------------------------------------------

    def check(self, rig: str) -> None:
        """Raise :class:`LockLost` naming the rig when its place was lost."""
        h = self.held.get(rig)
        if h is not None and h.lost:
            raise LockLost(h.lost, rig=rig, instrument="labgrid")

    def _mark(self, name: str, why: str) -> None:
        with self._lock:
            h = self.held[name]
            if h.lost is None:
                # The file first: per-rig processes read it (check_held), so whoever sees the rig lost
                # here must find it lost there too.
                self._write_status({name: why})
                h.lost = why
                self.progress(f"labgrid: rig {name}: {why}")

    def _write_status(self, lost: dict[str, str] | None = None) -> None:
        lost = lost or {}
        data = {
            "coordinator": self.coordinator,
            "holder": self._link.identity if self._link else None,
            "places": {n: {"token": h.token, "lost": h.lost or lost.get(n)} for n, h in self.held.items()},
        }
        path = status_path(self.rig_file)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, path)

    def _watch(self) -> None:
        """The keepalive thread: never dies of an unexpected error (a dead watcher would hide a lost lock)."""
        while not self._stop.is_set():
            try:
                self._watch_loop()
                return
            except Exception as exc:  # noqa: BLE001 - reported, then watching goes on
                self.progress(f"labgrid: keepalive error (watching on): {exc!r}")
                self._stop.wait(self.keepalive)

    def _watch_loop(self) -> None:
        from lab.labgrid.coordinator import CoordinatorError

        unreachable_since: float | None = None
        while not self._stop.wait(self.keepalive):
            if all(h.lost for h in self.held.values()):
                return
            try:
                if not self._link.alive:
                    self._link.reconnect()
                for h in self.held.values():
                    if not h.lost:
                        with contextlib.suppress(CoordinatorError):
                            self._link.poll_reservation(h.token)
                places = self._link.places()
                resources = {r.path for r in self._link.resources() if r.avail}
            except CoordinatorError as exc:
                now = time.monotonic()
                unreachable_since = unreachable_since or now
                if now - unreachable_since >= self.grace:
                    for name in self.held:
                        self._mark(
                            name,
                            f"lock lost: coordinator {self.coordinator} unreachable for "
                            f"{now - unreachable_since:.0f} s (place {name}): {exc.message}",
                        )
                continue
            unreachable_since = None
            me = self._link.identity
            for name, h in self.held.items():
                if h.lost:
                    continue
                place = places.get(name)
                if place is None:
                    self._mark(name, f"lock lost: place {name} was deleted at coordinator {self.coordinator}")
                elif place.acquired != me:
                    who = (
                        f"now held by {place.acquired}"
                        if place.acquired
                        else "no longer locked (coordinator restarted?)"
                    )
                    self._mark(name, f"lock lost: place {name} at coordinator {self.coordinator} is {who}")
                else:
                    gone = place.missing_resources(resources)
                    if gone:
                        self._mark(
                            name,
                            f"exporter gone: place {name} at coordinator {self.coordinator} "
                            f"lost {', '.join(sorted(gone))}",
                        )

    # -- release -------------------------------------------------------------------------------

    def release(self) -> None:
        """Release every lock still ours and cancel the reservations (idempotent, bounded)."""
        with self._lock:
            if self._released:
                return
            self._released = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.keepalive + 12)
        link = self._link
        t0 = time.monotonic()
        if link is not None and not (self.held or self.tokens):
            link.close()
        elif link is not None:
            from lab.labgrid.coordinator import CoordinatorError

            try:
                if not link.alive:
                    link.reconnect()
                # Reservations first: labgrid reschedules on each call, and a place released while
                # its reservation still exists stays unavailable to the next waiter until the
                # coordinator's 15 s housekeeping.
                for token in self.tokens:
                    with contextlib.suppress(CoordinatorError):
                        link.cancel_reservation(token)
                for name, h in self.held.items():
                    with contextlib.suppress(CoordinatorError):
                        link.release(name, fromuser=link.identity)
                        if not h.lost:
                            self.progress(f"labgrid: released place {name}")
            except CoordinatorError as exc:
                self.progress(f"labgrid: could not release at {self.coordinator}: {exc.message}")
            finally:
                link.close()
        self.timings["release"] = time.monotonic() - t0
        self._restore_handlers()
        with contextlib.suppress(Exception):
            atexit.unregister(self.release)

    def _install_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._old_handlers[signum] = signal.signal(signum, self._on_signal)

    def _restore_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, old in self._old_handlers.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, old)
        self._old_handlers.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        old = self._old_handlers.get(signum)
        self.release()
        if callable(old):
            old(signum, frame)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)


@contextlib.contextmanager
def held_rig_file(
    source: str | PlaceRequest,
    rig_file: str | os.PathLike[str],
    *,
    progress: Callable[[str], None] = _stderr,
    keepalive: float = 1.0,
    grace: float = 10.0,
) -> Iterator[HeldPlaces]:
    """Hold the places a ``labgrid://`` URL asks for and yield them with the derived rig file written."""
    request = parse_request(source) if isinstance(source, str) else source
    with HeldPlaces(request, Path(rig_file), progress=progress, keepalive=keepalive, grace=grace) as held:
        yield held


@contextlib.contextmanager
def rig_file_for(source: str | os.PathLike[str], run_dir: Path, **kw: Any) -> Iterator[Path]:
    """One entry for ``--rigs``: a ``labgrid://`` URL is held for the block; a path is passed through."""
    if is_labgrid_url(source):
        with held_rig_file(str(source), run_dir / "labgrid-rigs.yaml", **kw) as held:
            yield held.rig_file
    else:
        yield Path(source)


__all__ = [
    "STATUS_ENV",
    "STATUS_SUFFIX",
    "HeldPlace",
    "HeldPlaces",
    "LockLost",
    "PlacesUnavailable",
    "check_held",
    "held_rig_file",
    "rig_file_for",
    "status_path",
]
