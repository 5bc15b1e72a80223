"""The emulated set-top box: a virtual STB that speaks the same protocols as real hardware.

Start it with ``stblab emulate RIGFILE``; tests use :mod:`lab.emulator.testing`
(``write_rig_file``, ``EmulatedLab``). Nothing here imports a driver: the wire is the contract.
"""

from lab.emulator.config import EmulateSettings, load_emulated
from lab.emulator.testing import EmulatedLab, EmulatorFailed, write_rig_file

__all__ = ["EmulateSettings", "EmulatedLab", "EmulatorFailed", "load_emulated", "write_rig_file"]
