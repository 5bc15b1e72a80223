"""IR remote: press keys on a box through an IR blaster, as a person with the remote would.

The blaster is chosen by the rig's ``ir.url``:

* ``itach://host:port/M:C`` -- a Global Caché iTach (TCP API, port 4998). Keys are encoded here
  with the remote's lircd.conf (:mod:`lab.lircd`) into pulse/space timings, converted to carrier
  periods at the remote's frequency and sent as ``sendir``; the driver waits for ``completeir``.
  ``busyIR`` is waited out; ``ERR_...`` replies are instrument errors.
* ``lirc://host:port`` or a unix socket path (``/var/run/lirc/lircd``) -- a lircd daemon that
  drives the LED itself: ``SEND_ONCE``, ``SEND_START``/``SEND_STOP``, replies parsed from
  ``BEGIN ... SUCCESS|ERROR ... END``.

Key names are checked against the remote file before anything is sent: an unknown key is a
:class:`~lab.errors.TestError` listing the nearest names. A blaster that cannot be reached, drops
the connection or answers with an error is an :class:`~lab.errors.InfraError` (instrument ``ir``).
Every public action is a logged step (:mod:`lab.steps`).

Example::

    remote = IrRemote.from_rig(rig)
    remote.press("KEY_CHANNELUP")
    remote.press_many(["KEY_1", "KEY_0", "KEY_OK"])
    remote.hold("KEY_VOLUMEUP", 1.5)
    n = remote.press_until("KEY_DOWN", lambda: menu_item_selected("Settings"), max_presses=10)
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lab.drivers.itach import ITACH_ERRORS, ItachBlaster
from lab.drivers.lircd_blaster import LircdBlaster
from lab.errors import DeviceFault, InfraError, TestError
from lab.lircd import LircdError, Remote, UnknownKeyError, load_remotes, pick_remote
from lab.protocols import Blaster
from lab.steps import step

__all__ = ["IrRemote", "ItachBlaster", "LircdBlaster", "ITACH_ERRORS"]


def _blaster_for(url: str, *, rig_name: str | None, timeout: float) -> Blaster:
    if url.startswith("/") or url.startswith("unix:"):
        path = url.removeprefix("unix://").removeprefix("unix:")
        return LircdBlaster(path, rig_name=rig_name, timeout=timeout)
    p = urlparse(url)
    if p.scheme == "itach":
        if not p.hostname:
            raise TestError(f"IR url {url!r}: needs a host, e.g. itach://192.0.2.10:4998/1:1")
        module, connector = 1, 1
        if p.path and p.path != "/":
            try:
                m, c = p.path.strip("/").split(":")
                module, connector = int(m), int(c)
            except ValueError:
                raise TestError(f"IR url {url!r}: path must be /module:connector, e.g. /1:1") from None
        return ItachBlaster(p.hostname, p.port or 4998, module, connector, rig_name=rig_name, timeout=timeout)
    if p.scheme == "lirc":
        if not p.hostname:
            raise TestError(f"IR url {url!r}: needs host and port, e.g. lirc://127.0.0.1:8765")
        return LircdBlaster((p.hostname, p.port or 8765), rig_name=rig_name, timeout=timeout)
    raise TestError(f"IR url {url!r}: unsupported scheme (itach://, lirc:// or a lircd socket path)")


class IrRemote:
    """Presses keys on one box through an IR blaster (see the module docstring).

    ``remote`` is a parsed :class:`~lab.lircd.Remote` or the path of a lircd.conf file (pick one
    of several remotes with ``remote_name``). ``inter_press_delay`` is the least time between the
    end of one press and the start of the next, as a person's thumb leaves it.
    """

    def __init__(
        self,
        url: str,
        remote: Remote | str | os.PathLike[str],
        *,
        rig_name: str | None = None,
        remote_name: str | None = None,
        inter_press_delay: float = 0.3,
        timeout: float = 5.0,
    ) -> None:
        if inter_press_delay < 0:
            raise TestError(f"inter_press_delay must be >= 0, got {inter_press_delay}")
        self.url = url
        self.rig_name = rig_name
        self.inter_press_delay = inter_press_delay
        self.remote = self._load(remote, remote_name)
        self._blaster = _blaster_for(url, rig_name=rig_name, timeout=timeout)
        self._last_end = -math.inf
        self._toggle = 0
        self._lock = threading.RLock()
        self.presses = 0

    def _load(self, remote: Remote | str | os.PathLike[str], name: str | None) -> Remote:
        if isinstance(remote, Remote):
            if name and remote.name != name:
                raise TestError(f"remote is {remote.name!r}, not {name!r}")
            return remote
        try:
            remotes = load_remotes(Path(remote))
        except LircdError as exc:
            raise InfraError(f"remote file: {exc}", rig=self.rig_name, instrument="ir") from exc
        try:
            return pick_remote(remotes, name, remote, hint="set remote_name")
        except LircdError as exc:
            raise TestError(str(exc)) from None

    @classmethod
    def from_rig(cls, rig: Any, **overrides: Any) -> IrRemote:
        """The IR remote of a rig (its ``ir`` section: url, remote file, remote_name, delay)."""
        cfg = rig.ir
        if cfg is None:
            raise TestError(f"rig {rig.name} has no 'ir' section in its rig file")
        kwargs: dict[str, Any] = {
            "rig_name": rig.name,
            "remote_name": cfg.remote_name,
            "inter_press_delay": cfg.inter_press_delay,
        }
        kwargs.update(overrides)
        return cls(cfg.url, cfg.remote, **kwargs)

    # ------------------------------------------------------------------------------- helpers

    @property
    def keys(self) -> list[str]:
        """Every key name the remote defines."""
        return self.remote.keys

    def _check(self, key: str) -> None:
        if not isinstance(key, str):
            raise TestError(f"key must be a name like 'KEY_OK', got {key!r}")
        try:
            self.remote.check_key(key)
        except UnknownKeyError as exc:
            hint = f" Did you mean: {', '.join(exc.close)}?" if exc.close else ""
            raise TestError(
                f"remote {self.remote.name!r} has no key {key!r}.{hint} "
                f"(it has {len(self.remote.keys)} keys: {', '.join(self.remote.keys[:12])}"
                f"{', ...' if len(self.remote.keys) > 12 else ''})"
            ) from None

    def _pace(self, delay: float | None) -> None:
        wait = self._last_end + (self.inter_press_delay if delay is None else delay) - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def _signal_seconds(self, key: str, repeat: int) -> float:
        """How long a press occupies the LED: its frames and the gaps after them."""
        frames, gaps = self.remote.frames(key, repeat=repeat)
        return (sum(map(sum, frames)) + sum(gaps)) / 1e6  # the lead-out gap belongs to the press

    def _send(self, key: str, *, repeat: int, delay: float | None) -> None:
        with self._lock:
            self._pace(delay)
            started = time.monotonic()
            try:
                self._blaster.send(self.remote, key, repeat=repeat, toggle=self._toggle)
            finally:
                # a blaster may answer before its LED is done: the press ends when the signal does
                self._last_end = max(time.monotonic(), started + self._signal_seconds(key, repeat))
            self._toggle ^= 1  # RC-5/RC-6: the next press is a new press
            self.presses += 1

    # ------------------------------------------------------------------------------- actions

    @step("ir")
    def press(self, key: str, *, repeat: int = 0) -> None:
        """Press and release ``key`` once (``repeat`` extra repeat frames, as a short hold)."""
        self._check(key)
        if repeat < 0:
            raise TestError(f"repeat must be >= 0, got {repeat}")
        self._send(key, repeat=repeat, delay=None)

    @step("ir")
    def press_many(self, keys: Iterable[str], *, delay: float | None = None) -> None:
        """Press each key in turn, ``delay`` (default: the inter-press delay) apart.

        Every name is checked before the first press, so a typo sends nothing.
        """
        if isinstance(keys, str):
            raise TestError("press_many takes a list of key names, not one string")
        seq = list(keys)
        for key in seq:
            self._check(key)
        for key in seq:
            self._send(key, repeat=0, delay=delay)

    @step("ir")
    def hold(self, key: str, seconds: float) -> None:
        """Hold ``key`` down for ``seconds`` (the remote's repeat frames for that long)."""
        self._check(key)
        if not (seconds >= 0 and math.isfinite(seconds)):
            raise TestError(f"hold time must be a finite number of seconds >= 0, got {seconds}")
        with self._lock:
            self._pace(None)
            started = time.monotonic()
            try:
                self._blaster.hold(self.remote, key, seconds, toggle=self._toggle)
            finally:
                self._last_end = max(time.monotonic(), started + seconds)
            self._toggle ^= 1
            self.presses += 1

    @step("ir")
    def press_until(
        self,
        key: str,
        predicate: Callable[[], object],
        max_presses: int = 10,
        *,
        delay: float | None = None,
    ) -> int:
        """Press ``key`` until ``predicate()`` is truthy; return how many presses it took.

        The predicate is checked after each press. Raises :class:`~lab.errors.DeviceFault` when it
        is still false after ``max_presses`` (the box did not get where the presses should take it).
        """
        self._check(key)
        if max_presses < 1:
            raise TestError(f"max_presses must be >= 1, got {max_presses}")
        for n in range(1, max_presses + 1):
            self._send(key, repeat=0, delay=delay)
            if predicate():
                return n
        raise DeviceFault(
            f"pressed {key} {max_presses} times and the condition never became true",
            rig=self.rig_name,
            symptom="press-until-exhausted",
        )

    @step("ir")
    def check(self) -> str:
        """Ask the blaster whether it is there and ready (before any press, LAVA-style).

        iTach: ``getversion``; lircd: ``VERSION`` and ``LIST`` of the remote, which must hold every
        key of the rig's remote file. Returns a one-line description; InfraError otherwise.
        """
        return self._blaster.check(self.remote)

    def close(self) -> None:
        """Close the connection to the blaster."""
        self._blaster.close()

    def __enter__(self) -> IrRemote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"IrRemote({self.url!r}, remote={self.remote.name!r}, rig={self.rig_name!r})"
