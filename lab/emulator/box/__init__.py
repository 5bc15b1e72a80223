"""The emulated set-top box: power, boot, console session, screen, keys, firmware, defects.

One :class:`Box` per emulated rig. Instruments (console servers, SSH, PDU, HDMI, IR) are wired to
it by :mod:`lab.emulator.process`; the box only knows its UART (``ConsoleHub``), its screen state
and its persistent :class:`~lab.emulator.state.DeviceState`.

Power-on runs a boot thread: U-Boot banner and autoboot countdown (a key press stops it at the
``=> `` prompt), kernel log with timestamps, init, then the login prompt and shell on the console.
Every power event bumps a generation counter; threads of an older generation stop at their next
step, so power off silences the console at once.

Example::

    box = Box(rig, settings)
    box.set_power(True)          # what the PDU does
    box.press_key("KEY_CHANNELUP")
    state = box.screen_state()   # what the HDMI output shows
"""

from __future__ import annotations

from lab.emulator.box.core import Box
from lab.emulator.box.system import BASE_USED_KB
from lab.emulator.defects import OOM_FREE_KB

__all__ = ["BASE_USED_KB", "OOM_FREE_KB", "Box"]
