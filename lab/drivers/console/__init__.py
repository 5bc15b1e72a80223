"""The serial console driver: one reader thread, one console log, expect on the live stream.

One concept a module: ``port`` (connection, reconnect, writes), ``reader`` (the reader thread),
``expect`` (patterns, matches, timeouts, death strings), ``shell`` (login, run), ``bootloader``
(autoboot, bootloader commands); ``core`` composes them into :class:`SerialConsole`.
"""

from __future__ import annotations

from lab.drivers.console.core import SerialConsole
from lab.drivers.console.expect import ExpectMatch, ExpectTimeout, Pattern
from lab.drivers.console.port import ConsoleBusy
from lab.drivers.console.shell import clean_output
from lab.drivers.console_death import DEFAULT_DEATH_STRINGS, ConsoleDeath, DeathEvent

__all__ = [
    "DEFAULT_DEATH_STRINGS",
    "ConsoleBusy",
    "ConsoleDeath",
    "DeathEvent",
    "ExpectMatch",
    "ExpectTimeout",
    "Pattern",
    "SerialConsole",
    "clean_output",
]
