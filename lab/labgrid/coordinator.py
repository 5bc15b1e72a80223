"""The one module that imports labgrid: a synchronous link to a labgrid coordinator.

labgrid has no documented Python API, so everything stblab needs from it (places, exported
resources, reservations, locks) goes through :class:`CoordinatorLink`, built on labgrid's own
``ClientSession`` and its gRPC stub. A labgrid upgrade touches this file only; the rest of
:mod:`lab.labgrid` sees plain dataclasses (:class:`PlaceInfo`, :class:`ExportedResource`,
:class:`ReservationInfo`).

The sessions' asyncio loop runs in one daemon thread per process (gRPC's asyncio support binds
to a single loop), so the keepalive can watch the places while the job's parent process does
other work. A job holds one link; observers (janitor, tests) may open more on the same loop.

Example::

    with CoordinatorLink("127.0.0.1:20408", user="ci-4711") as link:
        res = link.create_reservation({"model": "STB-4K-X1"}, prio=0.0)
        ...
        link.acquire("stb-a")
        link.release("stb-a", fromuser=link.identity)

Every failure to reach the coordinator is a :class:`CoordinatorError` (an ``InfraError``) that
names the coordinator's address.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from labgrid.remote.client import ClientSession
from labgrid.remote.common import Place, Reservation, ResourceMatch
from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2
from labgrid.remote.generated import labgrid_coordinator_pb2_grpc

from lab.errors import InfraError

T = TypeVar("T")


class _QuietLabgridClient(logging.Filter):
    """labgrid's client logs "coordinator became unavailable" on the root logger from its stream
    task; stblab reports that itself, as an InfraError naming the coordinator and the place."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.replace("\\", "/").endswith("labgrid/remote/client.py")


logging.getLogger().addFilter(_QuietLabgridClient())


class CoordinatorError(InfraError):
    """The coordinator could not be reached or refused a request; names the coordinator."""

    def __init__(self, message: str, *, coordinator: str, rig: str | None = None) -> None:
        self.coordinator = coordinator
        super().__init__(f"labgrid coordinator {coordinator}: {message}", rig=rig, instrument="labgrid")


class PlaceRefused(CoordinatorError):
    """The coordinator refused to lock a place (held by someone else, not reserved for us)."""


@dataclass(frozen=True)
class ExportedResource:
    """One resource an exporter publishes: ``exporter/group/cls/name`` and its parameters."""

    exporter: str
    group: str
    cls: str
    name: str
    params: dict[str, Any]
    avail: bool
    acquired: str | None = None

    @property
    def path(self) -> tuple[str, str, str, str]:
        return (self.exporter, self.group, self.cls, self.name)


@dataclass(frozen=True)
class PlaceInfo:
    """A place as the coordinator sees it right now."""

    name: str
    tags: dict[str, str]
    matches: list[str]
    acquired: str | None
    acquired_resources: list[tuple[str, ...]]
    reservation: str | None
    changed: float
    comment: str = ""
    resources: list[ExportedResource] = field(default_factory=list)  # matching resources present now

    def missing_resources(self, present: set[tuple[str, ...]]) -> list[str]:
        """Acquired resources no exporter publishes any more (its host or exporter died)."""
        return ["/".join(p) for p in self.acquired_resources if tuple(p) not in present]


@dataclass(frozen=True)
class ReservationInfo:
    """A reservation: its token, owner (``host/user``), state and the place allocated to it."""

    token: str
    owner: str
    state: str  # waiting, allocated, acquired, expired, invalid
    prio: float
    filters: dict[str, str]
    allocated: list[str]
    created: float
    timeout: float


def _place_info(place: Place, resources: list[ExportedResource]) -> PlaceInfo:
    matching = [r for r in resources if place.hasmatch(list(r.path))]
    return PlaceInfo(
        name=place.name,
        tags=dict(place.tags),
        matches=[f"{m.exporter}/{m.group}/{m.cls}" + (f"/{m.name}" if m.name else "") for m in place.matches],
        acquired=place.acquired,
        acquired_resources=[tuple(p) for p in place.acquired_resources],
        reservation=place.reservation,
        changed=float(place.changed),
        comment=place.comment,
        resources=matching,
    )


def _reservation_info(res: Reservation) -> ReservationInfo:
    allocated = [name for group in res.allocations.values() for name in group]
    return ReservationInfo(
        token=res.token,
        owner=res.owner,
        state=res.state.name,
        prio=float(res.prio),
        filters=dict(res.filters.get("main", {})),
        allocated=allocated,
        created=float(res.created),
        timeout=float(res.timeout),
    )


# labgrid's own client keepalive settings (labgrid.remote.client.ClientSession).
_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 7500),
    ("grpc.keepalive_timeout_ms", 10000),
    ("grpc.http2.ping_timeout_ms", 10000),
    ("grpc.http2.max_pings_without_data", 0),
]
_LOOP: asyncio.AbstractEventLoop | None = None
_LOOP_LOCK = threading.Lock()


def _shared_loop() -> asyncio.AbstractEventLoop:
    """The process's one asyncio loop for labgrid sessions, run by a daemon thread.

    gRPC's asyncio support binds to one event loop per process, so every link of the process
    (the holder's, the janitor's, a test's observer) shares this loop.
    """
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None or _LOOP.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="labgrid-loop", daemon=True).start()
            _LOOP = loop
        return _LOOP


def default_host() -> str:
    """This machine's name as labgrid shows it in ``acquired: host/user``."""
    return socket.gethostname()


class CoordinatorLink:
    """A connected labgrid client session, usable from ordinary (non-async) code.

    ``user`` is the lock holder's name (``ci-<job id>`` or a login), ``host`` this machine's;
    the coordinator shows the holder as ``host/user``. ``timeout`` bounds every call.
    """

    def __init__(self, address: str, *, user: str, host: str | None = None, timeout: float = 10.0) -> None:
        self.address = address
        self.user = user
        self.host = host or default_host()
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: Any = None

    @property
    def identity(self) -> str:
        """``host/user``: how the coordinator names this client as a lock or reservation owner."""
        return f"{self.host}/{self.user}"

    # -- lifecycle ------------------------------------------------------------------------------

    def connect(self) -> CoordinatorLink:
        """Open the session (bounded by ``timeout``); CoordinatorError when nobody answers."""
        self._loop = _shared_loop()
        user, host = self.user, self.host

        class _Session(ClientSession):  # the lock holder is named by us, not by $USER
            channel: Any
            stub: Any

            def __attrs_post_init__(self) -> None:
                super().__attrs_post_init__()
                # gRPC shares one connection between equal channels of a process, and the coordinator
                # allows one client stream per connection: give this session a connection of its own.
                old = self.channel
                self.channel = grpc.aio.insecure_channel(
                    target=self.address, options=[*_CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)]
                )
                self.stub = labgrid_coordinator_pb2_grpc.CoordinatorStub(self.channel)
                asyncio.ensure_future(old.close())

            def getuser(self) -> str:
                return user

            def gethostname(self) -> str:
                return host

        async def start() -> Any:
            session = _Session(address=self.address, loop=asyncio.get_running_loop())
            try:
                await asyncio.wait_for(session.start(), self.timeout)
            except BaseException:
                await _quiet_stop(session)
                raise
            return session

        try:
            self._session = self._run_raw(start(), self.timeout + 2)
        except TimeoutError as exc:
            raise CoordinatorError(f"no answer within {self.timeout:g} s", coordinator=self.address) from exc
        except Exception as exc:
            raise CoordinatorError(
                f"cannot connect ({_why(exc)}); is labgrid-coordinator running there?", coordinator=self.address
            ) from exc
        return self

    def reconnect(self) -> None:
        """Drop the current session (if any) and open a new one with the same identity."""
        self._stop_session()
        self.connect()

    @property
    def alive(self) -> bool:
        """True while the session's stream to the coordinator is up."""
        return self._session is not None and not self._session.stopping.is_set()

    def close(self) -> None:
        """Close the session. Safe to call twice."""
        self._stop_session()

    def __enter__(self) -> CoordinatorLink:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stop_session(self) -> None:
        session, self._session = self._session, None
        if session is not None and self._loop is not None:
            with contextlib.suppress(Exception):  # closing a dead session must not hide the real error
                self._run_raw(_quiet_stop(session), 5)

    # -- plumbing ------------------------------------------------------------------------------

    def _run_raw(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        assert self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise

    def _call(self, what: str, fn: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
        """Run ``fn(session)`` on the link's loop; gRPC and timeout failures become CoordinatorError."""
        if self._session is None or self._loop is None:
            raise CoordinatorError(f"{what}: not connected", coordinator=self.address)
        if self._session.stopping.is_set():
            raise CoordinatorError(f"{what}: connection lost", coordinator=self.address)
        try:
            return self._run_raw(fn(self._session), self.timeout)
        except TimeoutError as exc:
            raise CoordinatorError(f"{what}: no answer within {self.timeout:g} s", coordinator=self.address) from exc
        except (asyncio.CancelledError, concurrent.futures.CancelledError) as exc:  # the stream went down under it
            raise CoordinatorError(f"{what}: cancelled (connection lost)", coordinator=self.address) from exc
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED):
                raise PlaceRefused(f"{what}: {exc.details()}", coordinator=self.address) from exc
            raise CoordinatorError(f"{what}: {exc.code().name}: {exc.details()}", coordinator=self.address) from exc

    # -- reading -------------------------------------------------------------------------------

    def resources(self) -> list[ExportedResource]:
        """Every resource published by every connected exporter."""

        async def read(s: Any) -> list[ExportedResource]:
            await s.sync_with_coordinator()
            out = []
            for exporter, groups in s.resources.items():
                for group, entries in groups.items():
                    for name, entry in entries.items():
                        if "cls" not in entry.data:  # deleted (exporter gone)
                            continue
                        out.append(
                            ExportedResource(
                                exporter, group, entry.cls, name, dict(entry.args), bool(entry.avail), entry.acquired
                            )
                        )
            return out

        return self._call("list resources", read)

    def places(self) -> dict[str, PlaceInfo]:
        """Every place, with the resources that match it now."""
        resources = self.resources()

        async def read(s: Any) -> dict[str, PlaceInfo]:
            return {name: _place_info(p, resources) for name, p in sorted(s.places.items())}

        return self._call("list places", read)

    def reservations(self) -> list[ReservationInfo]:
        """Every reservation the coordinator holds, highest priority then oldest first."""

        async def read(s: Any) -> list[ReservationInfo]:
            resp = await s.stub.GetReservations(pb2.GetReservationsRequest())
            return [_reservation_info(Reservation.from_pb2(r)) for r in resp.reservations]

        out = self._call("list reservations", read)
        return sorted(out, key=lambda r: (-r.prio, r.created))

    # -- places --------------------------------------------------------------------------------

    def add_place(self, name: str) -> None:
        """Create a place (no-op when it exists)."""

        async def add(s: Any) -> None:
            await s.sync_with_coordinator()
            if name not in s.places:
                await s.stub.AddPlace(pb2.AddPlaceRequest(name=name))
                await s.sync_with_coordinator()

        self._call(f"add place {name}", add)

    def delete_place(self, name: str) -> None:
        """Delete a place."""

        async def delete(s: Any) -> None:
            await s.stub.DeletePlace(pb2.DeletePlaceRequest(name=name))
            await s.sync_with_coordinator()

        self._call(f"delete place {name}", delete)

    def set_matches(self, place: str, patterns: list[str]) -> None:
        """Make the place's resource matches exactly ``patterns`` (``exporter/group/cls``)."""

        async def update(s: Any) -> None:
            await s.sync_with_coordinator()
            have = {
                f"{m.exporter}/{m.group}/{m.cls}" + (f"/{m.name}" if m.name else "") for m in s.places[place].matches
            }
            for pattern in sorted(set(patterns) - have):
                await s.stub.AddPlaceMatch(pb2.AddPlaceMatchRequest(placename=place, pattern=pattern))
            for pattern in sorted(have - set(patterns)):
                await s.stub.DeletePlaceMatch(pb2.DeletePlaceMatchRequest(placename=place, pattern=pattern))
            await s.sync_with_coordinator()

        self._call(f"set matches of place {place}", update)

    def set_tags(self, place: str, tags: dict[str, str]) -> None:
        """Set the place's tags (keys absent from ``tags`` are removed, as labgrid does)."""

        async def update(s: Any) -> None:
            await s.stub.SetPlaceTags(pb2.SetPlaceTagsRequest(placename=place, tags=tags))
            await s.sync_with_coordinator()

        self._call(f"set tags of place {place}", update)

    def set_comment(self, place: str, comment: str) -> None:
        """Set the place's comment (shown by ``labgrid-client places -v``)."""

        async def update(s: Any) -> None:
            await s.stub.SetPlaceComment(pb2.SetPlaceCommentRequest(placename=place, comment=comment))
            await s.sync_with_coordinator()

        self._call(f"set comment of place {place}", update)

    # -- locks ---------------------------------------------------------------------------------

    def acquire(self, place: str) -> None:
        """Lock the place for this client (PlaceRefused when someone else holds or reserved it)."""

        async def acquire(s: Any) -> None:
            await s.stub.AcquirePlace(pb2.AcquirePlaceRequest(placename=place))
            await s.sync_with_coordinator()

        self._call(f"acquire place {place}", acquire)

    def release(self, place: str, *, fromuser: str | None = None) -> None:
        """Unlock the place. With ``fromuser`` only when that ``host/user`` holds it (never kicks others)."""

        async def release(s: Any) -> None:
            if fromuser is None:
                req = pb2.ReleasePlaceRequest(placename=place)
            else:
                req = pb2.ReleasePlaceRequest(placename=place, fromuser=fromuser)
            await s.stub.ReleasePlace(req)
            await s.sync_with_coordinator()

        self._call(f"release place {place}", release)

    # -- reservations --------------------------------------------------------------------------

    def create_reservation(self, filters: dict[str, str], *, prio: float = 0.0) -> ReservationInfo:
        """Ask for one place whose tags (and ``name``) match ``filters``; returns the reservation."""

        async def create(s: Any) -> ReservationInfo:
            req = pb2.CreateReservationRequest(
                filters={"main": pb2.Reservation.Filter(filter=filters)},
                prio=float(prio),
            )
            resp = await s.stub.CreateReservation(req)
            return _reservation_info(Reservation.from_pb2(resp.reservation))

        return self._call("create reservation", create)

    def poll_reservation(self, token: str) -> ReservationInfo:
        """Refresh the reservation (it expires after 60 s unpolled) and return its state."""

        async def poll(s: Any) -> ReservationInfo:
            resp = await s.stub.PollReservation(pb2.PollReservationRequest(token=token))
            return _reservation_info(Reservation.from_pb2(resp.reservation))

        return self._call(f"poll reservation {token}", poll)

    def cancel_reservation(self, token: str) -> None:
        """Cancel a reservation (its place becomes free for the next one)."""

        async def cancel(s: Any) -> None:
            await s.stub.CancelReservation(pb2.CancelReservationRequest(token=token))

        self._call(f"cancel reservation {token}", cancel)


async def _quiet_stop(session: Any) -> None:
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(session.stop(), 3)
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(session.close(), 3)


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def match_pattern(exporter: str, group: str) -> str:
    """The place match for one exporter's resource group (all classes in it)."""
    ResourceMatch(exporter=exporter, group=group, cls="*")  # validates like labgrid-client would
    return f"{exporter}/{group}/*"


__all__ = [
    "CoordinatorError",
    "CoordinatorLink",
    "ExportedResource",
    "PlaceInfo",
    "PlaceRefused",
    "ReservationInfo",
    "default_host",
    "match_pattern",
]
