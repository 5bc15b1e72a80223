"""The serial console driver, kept importable under its old name: see :mod:`lab.drivers.console`."""

from __future__ import annotations

from lab.drivers.console import (
    DEFAULT_DEATH_STRINGS,
    ConsoleBusy,
    ConsoleDeath,
    DeathEvent,
    ExpectMatch,
    ExpectTimeout,
    SerialConsole,
    clean_output,
)
from lab.drivers.console.bootloader import AUTOBOOT, KERNEL_STARTED
from lab.drivers.console.reader import _boot_phase  # noqa: F401  (tests import it from here)
from lab.drivers.console.shell import KERNEL_LINE, LOGIN_INCORRECT, LOGIN_PROMPT, PASSWORD_PROMPT

__all__ = [
    "AUTOBOOT",
    "DEFAULT_DEATH_STRINGS",
    "KERNEL_LINE",
    "KERNEL_STARTED",
    "LOGIN_INCORRECT",
    "LOGIN_PROMPT",
    "PASSWORD_PROMPT",
    "ConsoleBusy",
    "ConsoleDeath",
    "DeathEvent",
    "ExpectMatch",
    "ExpectTimeout",
    "SerialConsole",
    "clean_output",
]
