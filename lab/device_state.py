"""The states a box moves through under :class:`lab.device.Stb` (off, bootloader, shell and the rest)."""

from __future__ import annotations

from enum import StrEnum

STATES = ("off", "bootloader", "shell")


class StbState(StrEnum):
    """Where :class:`Stb` believes the box is. ``to()`` targets the first three; a StrEnum, so
    ``stb.state == "shell"`` keeps working."""

    OFF = "off"
    BOOTLOADER = "bootloader"
    SHELL = "shell"
    BOOTING = "booting"  # powered, on its way to a login prompt
    DIRTY = "dirty"  # a test failed on it: the next to("shell") power-cycles (see Stb.mark_dirty)
    UNKNOWN = "unknown"  # not looked yet (a fresh Stb)
