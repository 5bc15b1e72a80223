"""The emulated set-top box: a virtual STB that speaks the same protocols as real hardware.

Start it with ``stblab emulate RIGFILE`` or from Python with :mod:`lab.emulator.launcher`
(``EmulatedLab``, ``ensure_emulated``); tests write rig files with :mod:`lab.emulator.testing`
(``write_rig_file``). Nothing here imports a driver: the wire is the contract.
"""

from lab.emulator.config import EmulateSettings, load_emulated
from lab.emulator.launcher import EmulatedLab, EmulatorFailed
from lab.emulator.testing import write_rig_file

__all__ = ["EmulateSettings", "EmulatedLab", "EmulatorFailed", "load_emulated", "write_rig_file"]
