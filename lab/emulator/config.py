"""The emulated rigs of a rig file: those with an ``emulate:`` section, validated, with their ports checked.

``load_emulated(path)`` returns ``[(rig, EmulateSettings), ...]`` and raises
:class:`lab.errors.RigFileError` naming the file, the rig, the key and the problem. The section's
schema is :mod:`lab.emulate_schema` (its names are importable from here as before).
"""

from __future__ import annotations

import os

from lab.emulate_schema import (
    BlackAfterResume,
    BootFail,
    BootTimings,
    DecoderFreeze,
    EmulateSettings,
    FirmwareSpec,
    HardwareHistory,
    HogSensitive,
    IptvSettings,
    KernelPanic,
    KeyWindow,
    MemoryLeak,
    PowerStorm,
    SshdDies,
    TornUpdate,
    parse_settings,
)
from lab.errors import RigFileError
from lab.rig import Rig, load_rigs


def load_emulated(path: str | os.PathLike[str], names: list[str] | None = None) -> list[tuple[Rig, EmulateSettings]]:
    """The emulated rigs of a rig file (those with ``emulate:``), validated, in file order.

    ``names`` picks rigs by name; an unknown or non-emulated name is a RigFileError.
    """
    rigs = load_rigs(path)
    chosen: list[Rig]
    if names:
        chosen = []
        for name in names:
            if name not in rigs:
                raise RigFileError(f"{path}: no rig named '{name}' (have: {', '.join(rigs)})")
            if not rigs[name].emulated:
                raise RigFileError(f"{path}: rig '{name}': has no 'emulate:' section, so it cannot be emulated")
            chosen.append(rigs[name])
    else:
        chosen = [r for r in rigs.values() if r.emulated]
    if not chosen:
        raise RigFileError(f"{path}: no rig has an 'emulate:' section")
    pairs = [(rig, parse_settings(rig)) for rig in chosen]
    _no_shared_ports(path, pairs)
    return pairs


def listen_addresses(rig: Rig, settings: EmulateSettings) -> list[tuple[str, str]]:
    """``(key, "host:port")`` of every TCP endpoint the emulator serves for this rig."""
    from urllib.parse import urlparse

    found: list[tuple[str, str]] = []
    urls = [
        ("serial.url", rig.serial.url if rig.serial else None),
        ("power.url", rig.power.url if rig.power else None),
        ("video.url", rig.video.url if rig.video and rig.video.url.startswith("http") else None),
        ("ir.url", rig.ir.url if rig.ir else None),
        ("emulate.rfc2217_url", settings.rfc2217_url),
        ("emulate.itach_url", settings.itach_url),
        (
            "emulate.lirc_url",
            settings.lirc_url if settings.lirc_url and not settings.lirc_url.startswith("/") else None,
        ),
    ]
    for key, url in urls:
        if url:
            p = urlparse(url)
            if p.hostname and p.port:
                found.append((key, f"{p.hostname}:{p.port}"))
    if rig.ssh is not None:
        found.append(("ssh.port", f"{rig.ssh.host}:{rig.ssh.port}"))
    return found


def _no_shared_ports(path: str | os.PathLike[str], pairs: list[tuple[Rig, EmulateSettings]]) -> None:
    """Two endpoints on one address would fail later as 'port in use': say which, up front."""
    seen: dict[str, tuple[str, str]] = {}
    for rig, settings in pairs:
        for key, addr in listen_addresses(rig, settings):
            port = addr.rsplit(":", 1)[1]
            for other_addr, (other_rig, other_key) in seen.items():
                if other_addr == addr or (other_addr.rsplit(":", 1)[1] == port and "0.0.0.0" in (addr, other_addr)):
                    raise RigFileError(
                        f"{path}: rig '{rig.name}': key '{key}': {addr} is also rig '{other_rig}' key '{other_key}'"
                        " (every emulated instrument needs its own port; each emulated rig has its own PDU)"
                    )
            seen[addr] = (rig.name, key)


__all__ = [
    "BlackAfterResume",
    "BootFail",
    "DecoderFreeze",
    "HogSensitive",
    "KernelPanic",
    "KeyWindow",
    "MemoryLeak",
    "PowerStorm",
    "SshdDies",
    "TornUpdate",
    "BootTimings",
    "EmulateSettings",
    "FirmwareSpec",
    "HardwareHistory",
    "IptvSettings",
    "listen_addresses",
    "load_emulated",
    "parse_settings",
]
