"""The serial console driver, kept importable under its old name: see :mod:`lab.drivers.console`."""

from __future__ import annotations

from lab.drivers.console import (
    DEFAULT_DEATH_STRINGS,
    ConsoleDeath,
    DeathEvent,
    ExpectMatch,
    ExpectTimeout,
    SerialConsole,
    clean_output,
)
from lab.drivers.console.reader import _boot_phase  # noqa: F401  (tests import it from here)

__all__ = [
    "DEFAULT_DEATH_STRINGS",
    "ConsoleDeath",
    "DeathEvent",
    "ExpectMatch",
    "ExpectTimeout",
    "SerialConsole",
    "clean_output",
]
