"""Fixtures for the emulator's tests (helpers live in emu_helpers.py)."""

from __future__ import annotations

import contextlib
import urllib.error
from collections.abc import Callable, Iterator

import pytest
from emu_helpers import FAST_BOOT, pdu

from lab.emulator.testing import EmulatedLab
from lab.rig import Rig


@pytest.fixture(scope="session")
def lab(emulated_lab: Callable[..., EmulatedLab]) -> EmulatedLab:
    """One emulated rig (good firmware 2.0.0, fast boot) shared by the session's tests."""
    return emulated_lab(("stb-a",), boot=FAST_BOOT, key="emulator-tests")


@pytest.fixture()
def rig(lab: EmulatedLab) -> Iterator[Rig]:
    """The shared rig, powered off again after each test (so each test starts from power-off)."""
    r = lab.rigs["stb-a"]
    yield r
    with contextlib.suppress(urllib.error.URLError, OSError):
        pdu(r, 0)
