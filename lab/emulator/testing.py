"""Launch emulated rigs from tests: a rig file on free loopback ports and a context manager.

Example::

    from lab.emulator.testing import EmulatedLab, write_rig_file

    def test_boot(tmp_path):
        rig_file = write_rig_file(tmp_path, firmware="2.1.0", boot={"bootdelay": 1})
        with EmulatedLab(rig_file) as lab:
            rig = lab.rigs["stb-a"]          # a lab.rig.Rig: rig.serial.url, rig.power.url, ...
            ...

``EmulatedLab`` runs ``stblab emulate`` as a subprocess (its own session), waits (bounded) for
one ``ready NAME`` line per rig, and on exit sends SIGTERM (then SIGKILL). ``kill()`` kills the
whole emulator at once, for tests that need an instrument to die mid-call.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from lab.emulator.launcher import EmulatedLab, EmulatorFailed
from lab.emulator.ports import _MARKER, _free_ports, free_port, reassign_ports

_RIG_KEYS = {"model", "features", "serial", "ssh", "ir", "video", "power", "network"}
_REPO = Path(__file__).resolve().parents[2]
REMOTE = _REPO / "rigs" / "remotes" / "stblab-rc1.lircd.conf"


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def rig_entry(
    directory: Path,
    name: str,
    *,
    firmware: str | dict[str, Any] = "2.0.0",
    defects: dict[str, list[dict[str, Any]]] | None = None,
    hardware_history: dict[str, Any] | None = None,
    ir: str = "itach",
    **overrides: Any,
) -> dict[str, Any]:
    """One emulated rig's YAML mapping on fresh loopback ports (see :func:`write_rig_file`)."""
    serial_p, rfc_p, ssh_p, itach_p, lirc_p, video_p, power_p = _free_ports(7)
    remote = directory / "remotes" / REMOTE.name
    if not remote.exists() and REMOTE.exists():
        remote.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REMOTE, remote)
    fw = {"version": firmware} if isinstance(firmware, str) else dict(firmware)
    itach_url = f"itach://127.0.0.1:{itach_p}/1:1"
    lirc_url = f"lirc://127.0.0.1:{lirc_p}"
    entry: dict[str, Any] = {
        "name": name,
        "model": "STB-4K-X1",
        "features": ["hdmi", "ir", "ssh"],
        "serial": {"url": f"socket://127.0.0.1:{serial_p}", "login": {"user": "root"}},
        "ssh": {
            "host": "127.0.0.1",
            "port": ssh_p,
            "user": "root",
            "key": str(directory / "keys" / "lab_ed25519"),
            "known_hosts": str(directory / "known_hosts"),
        },
        "ir": {"url": itach_url if ir == "itach" else lirc_url, "remote": str(remote)},
        "video": {"url": f"http://127.0.0.1:{video_p}/stream.mjpg", "width": 1280, "height": 720, "fps": 25},
        "power": {"url": f"http://127.0.0.1:{power_p}", "outlet": 1},
        "emulate": {
            "seed": 1000 + sum(map(ord, name)),
            "state_dir": str(directory / "state" / name),
            "serial_number": f"SN-{name.upper()}",
            "hardware_revision": "B2",
            "production_lot": "L2026-07",
            "rfc2217_url": f"rfc2217://127.0.0.1:{rfc_p}",
            ("lirc_url" if ir == "itach" else "itach_url"): lirc_url if ir == "itach" else itach_url,
            "firmware": fw,
            "trusted_keys": [str(directory / "keys" / "vendor_ed25519.pub")],
            "hardware_history": dict(hardware_history or {}),
            "defects": dict(defects or {}),
        },
    }
    rig_over = {k: v for k, v in overrides.items() if k in _RIG_KEYS}
    emu_over = {k: v for k, v in overrides.items() if k not in _RIG_KEYS}
    entry = _merge(entry, rig_over)
    entry["emulate"] = _merge(entry["emulate"], emu_over)
    return entry


def write_rig_file(
    directory: str | os.PathLike[str],
    names: tuple[str, ...] | list[str] = ("stb-a",),
    *,
    firmware: str | dict[str, Any] = "2.0.0",
    defects: dict[str, list[dict[str, Any]]] | None = None,
    hardware_history: dict[str, Any] | None = None,
    per_rig: dict[str, dict[str, Any]] | None = None,
    **overrides: Any,
) -> Path:
    """Write ``directory/rigs.yaml`` with emulated rigs on free loopback ports; returns its path.

    Keys, known_hosts, the remote file and each device's state live under ``directory``.
    ``overrides`` go into each rig: rig sections (``model``, ``serial``, ``ssh``, ``ir``,
    ``video``, ``power``, ``network``, ``features``) at rig level, anything else into
    ``emulate:`` (e.g. ``boot={"bootdelay": 1}``, ``console_password_env="PW"``); mappings merge.
    ``per_rig`` gives one rig its own keyword arguments, e.g. ``{"stb-b": {"firmware": "2.2.0"}}``.
    """
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    common = {"firmware": firmware, "defects": defects, "hardware_history": hardware_history, **overrides}
    rigs = [rig_entry(directory, n, **{**common, **(per_rig or {}).get(n, {})}) for n in names]
    path = directory / "rigs.yaml"
    path.write_text(_MARKER + yaml.safe_dump({"rigs": rigs}, sort_keys=False), encoding="utf-8")
    return path


__all__ = ["EmulatedLab", "EmulatorFailed", "free_port", "reassign_ports", "rig_entry", "write_rig_file"]
