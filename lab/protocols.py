"""The instrument seams: what :class:`~lab.device.Stb` needs from each kind of instrument, and which
driver serves a rig's URL.

After labgrid's protocol/driver split: a *protocol* says what an instrument can do (``Console``,
``Shell``, ``Power``, ``RemoteControl``, ``Capture``, and ``Blaster`` below the IR remote); a
*driver* is one brand's implementation, found through the :func:`register`-ed URL schemes of its
kind. ``Stb`` builds its instruments with :func:`build`, so a second PDU or capture brand is one
module plus one registration, and nothing in ``lab.device`` changes::

    # lab/drivers/snmp_power.py
    class SnmpPower:                         # satisfies lab.protocols.Power
        @classmethod
        def from_rig(cls, rig): ...
        def on(self): ...

    # registered in code ...
    from lab.protocols import register
    register("power", "snmp", "lab.drivers.snmp_power:SnmpPower")
    # ... or by any installed package, in its pyproject.toml:
    # [project.entry-points."stblab.drivers"]
    # "power:snmp" = "mypkg.pdu:SnmpPower"

Drivers are named as ``"module:Class"`` strings and imported on first use, so importing this
module (or ``lab.device``) never pulls in OpenCV, paramiko or pyserial. A URL whose scheme no
driver registered goes to the kind's built-in driver, which explains what it accepts.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlparse

from lab.errors import TestError

if TYPE_CHECKING:
    import os
    import re

    from lab.drivers.result import CommandResult
    from lab.lircd import Remote
    from lab.rig import Rig
    from lab.video.frame import Frame

Kind = Literal["console", "power", "remote", "capture"]
KINDS: tuple[Kind, ...] = ("console", "power", "remote", "capture")

#: The rig-file section that configures each kind.
SECTIONS: dict[Kind, str] = {"console": "serial", "power": "power", "remote": "ir", "capture": "video"}


# ---------------------------------------------------------------------------------- protocols


class ExpectResult(Protocol):
    """What a console's ``expect`` found: which pattern (``index``) and the text before it."""

    index: int
    before: str
    pattern: str

    @property
    def match(self) -> re.Match[str]: ...

    @property
    def text(self) -> str: ...


@runtime_checkable
class Console(Protocol):
    """A serial console: one stream read by expect, logged from before power-on (SerialConsole)."""

    prompt: str

    def open(self, timeout: float = 5.0) -> Any: ...

    def close(self) -> None: ...

    def drain(self) -> str: ...

    def sendline(self, text: str = "") -> None: ...

    def expect(self, patterns: Any, timeout: float = 30.0, *, check_death: bool = True) -> ExpectResult: ...

    def run(self, cmd: str, timeout: float = 30.0, *, check_death: bool = True) -> CommandResult: ...

    def login(self, user: str | None = None, *, password: str | None = None, timeout: float = 30.0) -> None: ...

    def try_expect(self, patterns: Any, timeout: float = 30.0, *, check_death: bool = True) -> ExpectResult | None: ...

    def write(self, data: str | bytes) -> None: ...

    def mark(self) -> int: ...

    def since(self, mark: int) -> str: ...

    def interrupt_bootloader(self, timeout: float = 30.0) -> None: ...

    def bootloader_run(self, cmd: str, timeout: float = 10.0) -> CommandResult: ...

    def new_incident(self) -> None: ...

    def check_death(self) -> None: ...

    def clear_deaths(self) -> list[Any]: ...

    def tail(self, n: int = 20) -> str: ...


@runtime_checkable
class Shell(Protocol):
    """A command channel to the running box besides the console (SshClient)."""

    def run(self, cmd: str, timeout: float = 30.0) -> CommandResult: ...

    def put(self, local: str | os.PathLike[str], remote: str) -> str: ...

    def get(self, remote: str, local: str | os.PathLike[str]) -> str: ...

    def close(self) -> None: ...


@runtime_checkable
class Power(Protocol):
    """One switched outlet feeding the box (PowerSwitch: a NETIO-style PDU)."""

    def on(self) -> None: ...

    def off(self) -> None: ...

    def cycle(self, off_seconds: float | None = None) -> None: ...

    def status(self) -> bool: ...


@runtime_checkable
class RemoteControl(Protocol):
    """The IR remote pointed at the box (IrRemote), whatever blaster sends it."""

    @property
    def keys(self) -> list[str]: ...

    def press(self, key: str, *, repeat: int = 0) -> None: ...

    def press_many(self, keys: Iterable[str], *, delay: float | None = None) -> None: ...

    def hold(self, key: str, seconds: float) -> None: ...

    def check(self) -> str: ...

    def close(self) -> None: ...


class Blaster(Protocol):
    """What the IR remote needs from a backend (an iTach connector, a lircd socket)."""

    def send(self, remote: Remote, key: str, *, repeat: int, toggle: int) -> None: ...

    def hold(self, remote: Remote, key: str, seconds: float, *, toggle: int) -> None: ...

    def check(self, remote: Remote) -> str: ...

    def close(self) -> None: ...


@runtime_checkable
class FrameSource(Protocol):
    """Frames with their capture time: what the video waiters read."""

    def latest(self, max_age: float | None = None) -> Frame | None: ...

    def next_frame(self, timeout: float = 5.0) -> Frame: ...

    def frames(self, timeout: float | None = None, *, since: float | None = None) -> Iterator[Frame]: ...


@runtime_checkable
class Capture(FrameSource, Protocol):
    """An HDMI capture: a running frame source with a ring buffer for evidence (Capture)."""

    def start(self) -> Any: ...

    def close(self) -> None: ...

    def has_signal(self) -> bool: ...

    def stats(self) -> dict[str, Any]: ...

    def save_frame(self, path: str | os.PathLike[str], frame: Frame | None = None) -> Path: ...

    def save_clip(self, path: str | os.PathLike[str], seconds: float | None = None) -> Path: ...


# ---------------------------------------------------------------------------------- registry

#: The built-in driver of each kind: it serves its schemes and explains URLs nobody serves.
DEFAULTS: dict[Kind, str] = {
    "console": "lab.drivers.serial:SerialConsole",
    "power": "lab.drivers.power:PowerSwitch",
    "remote": "lab.drivers.ir:IrRemote",
    "capture": "lab.drivers.capture:Capture",
}

_BUILTIN: dict[Kind, Sequence[str]] = {
    "console": ("socket", "rfc2217", "serial", "file"),
    "power": ("http", "https"),
    "remote": ("itach", "lirc", "unix", "file"),
    "capture": ("http", "https", "rtsp", "rtsps", "tcp", "rtmp", "srt", "v4l2", "file", "device"),
}

_registry: dict[tuple[Kind, str], str] = {
    (kind, scheme): DEFAULTS[kind] for kind, schemes in _BUILTIN.items() for scheme in schemes
}
_lock = threading.Lock()
_entry_points_loaded = False

ENTRY_POINT_GROUP = "stblab.drivers"


def register(kind: Kind, schemes: str | Iterable[str], target: str | type) -> None:
    """Serve the URL ``schemes`` of instrument ``kind`` with ``target`` (a class or ``"module:Class"``).

    The class must have ``from_rig(rig)`` and satisfy the kind's protocol. A later registration of
    the same scheme replaces the earlier one (a site's own driver wins over the built-in one).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown instrument kind {kind!r}; known: {', '.join(KINDS)}")
    name = target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"
    if ":" not in name:
        raise ValueError(f"driver {name!r} must be 'module:Class'")
    with _lock:
        for scheme in [schemes] if isinstance(schemes, str) else schemes:
            _registry[(kind, scheme.lower())] = name


def scheme_of(url: str) -> str:
    """The scheme a URL is looked up by: ``file`` for paths, ``device`` for a bare camera index."""
    text = url.strip()
    if text.isdigit():
        return "device"
    scheme = urlparse(text).scheme.lower()
    return scheme if len(scheme) > 1 else "file"  # "C:" is a drive, not a scheme


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        kind, _, scheme = ep.name.partition(":")
        if kind in KINDS and scheme:
            register(kind, scheme, ep.value)  # kind narrowed by the membership test


def driver_name(kind: Kind, url: str) -> str:
    """The ``"module:Class"`` that serves ``url`` for ``kind`` (the built-in driver when none does)."""
    _load_entry_points()
    with _lock:
        return _registry.get((kind, scheme_of(url)), DEFAULTS[kind])


def served_by_plugin(kind: Kind, url: str) -> bool:
    """True when a driver other than the built-in one registered ``url``'s scheme for ``kind``.

    The rig file's checks of a URL are the built-in drivers' rules; a URL another driver serves is
    that driver's to check (in its ``from_rig``), so the rig file lets it through.
    """
    return driver_name(kind, url) != DEFAULTS[kind]


def driver_for(kind: Kind, url: str) -> type:
    """The driver class for ``url`` (imported now). TestError naming the driver when it cannot load."""
    name = driver_name(kind, url)
    module, _, cls_name = name.partition(":")
    try:
        cls: type = getattr(importlib.import_module(module), cls_name)
        return cls
    except (ImportError, AttributeError) as exc:
        raise TestError(f"{kind} driver {name!r} for {url!r} cannot be loaded: {exc}") from exc


def registered(kind: Kind | None = None) -> dict[tuple[str, str], str]:
    """The registry as ``{(kind, scheme): "module:Class"}`` (for ``--help`` texts and tests)."""
    _load_entry_points()
    with _lock:
        return {k: v for k, v in _registry.items() if kind is None or k[0] == kind}


def build(kind: Kind, rig: Rig, **kwargs: Any) -> Any:
    """The driver instance for the ``kind`` section of ``rig`` (``Driver.from_rig(rig, **kwargs)``).

    TestError when the rig file has no such section. The caller types the result by protocol.
    """
    section = SECTIONS[kind]
    cfg = getattr(rig, section, None)
    if cfg is None:
        raise TestError(f"rig {rig.name} has no '{section}' section in its rig file")
    url = str(getattr(cfg, "url", "") or "")
    cls = driver_for(kind, url)
    factory: Callable[..., Any] = getattr(cls, "from_rig")  # noqa: B009 - any driver class
    return factory(rig, **kwargs)


__all__ = [
    "DEFAULTS",
    "ENTRY_POINT_GROUP",
    "KINDS",
    "SECTIONS",
    "Blaster",
    "Capture",
    "Console",
    "ExpectResult",
    "FrameSource",
    "Kind",
    "Power",
    "RemoteControl",
    "Shell",
    "build",
    "driver_for",
    "driver_name",
    "register",
    "registered",
    "scheme_of",
    "served_by_plugin",
]
