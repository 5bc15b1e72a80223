"""The emulated set-top box: a virtual STB that speaks the same protocols as real hardware.

Start it with ``stblab emulate RIGFILE`` or from Python with :mod:`lab.emulator.launcher`
(``EmulatedLab``, ``ensure_emulated``); tests write rig files with :mod:`lab.emulator.testing`
(``write_rig_file``). Nothing here imports a driver: the wire is the contract.

The names below are loaded when first used (PEP 562): a launcher (``lab.emulator.launcher``, which
the plugin and the job commands import in every run) does not pay for the emulate-section schema
(~0.15 s of pydantic models) that only the emulator processes need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.lazy import lazy_names

if TYPE_CHECKING:
    from lab.emulator.config import EmulateSettings, load_emulated
    from lab.emulator.launcher import EmulatedLab, EmulatorFailed
    from lab.emulator.testing import write_rig_file

#: public name -> the submodule defining it
_HOME = {
    "EmulateSettings": "config",
    "EmulatedLab": "launcher",
    "EmulatorFailed": "launcher",
    "load_emulated": "config",
    "write_rig_file": "testing",
}

__all__ = ["EmulateSettings", "EmulatedLab", "EmulatorFailed", "load_emulated", "write_rig_file"]


__getattr__, __dir__ = lazy_names(__name__, _HOME)
