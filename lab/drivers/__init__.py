"""Rig drivers: one instrument each, each usable alone (and composed by :class:`lab.device.Stb`).

Names are imported lazily, so ``from lab.drivers import SerialConsole`` does not load OpenCV.

Example::

    from lab.drivers import PowerSwitch, SerialConsole
    with SerialConsole("socket://127.0.0.1:17001", rig_name="stb-a", log_path="console.log") as con:
        PowerSwitch("http://127.0.0.1:17090", 1, rig_name="stb-a").on()
        con.expect("login:", timeout=30)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SerialConsole": "lab.drivers.console",
    "ExpectMatch": "lab.drivers.console",
    "ExpectTimeout": "lab.drivers.console",
    "ConsoleDeath": "lab.drivers.console_death",
    "ConsoleLog": "lab.drivers.console_log",
    "SshClient": "lab.drivers.ssh",
    "HostKeyError": "lab.drivers.ssh",
    "CommandTimeout": "lab.drivers.ssh",
    "PowerSwitch": "lab.drivers.power",
    "PowerReading": "lab.drivers.power",
    "IrRemote": "lab.drivers.ir",
    "ItachBlaster": "lab.drivers.ir",
    "LircdBlaster": "lab.drivers.ir",
    "Capture": "lab.drivers.capture",
    "CaptureTimeout": "lab.drivers.capture",
    "FrameRing": "lab.drivers.ring",
    "CommandResult": "lab.drivers.result",
    "CommandFailed": "lab.drivers.result",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lab.drivers' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
