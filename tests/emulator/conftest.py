"""Fixtures for the emulator's tests (helpers live in emu_helpers.py)."""

from __future__ import annotations

import contextlib
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
from emu_helpers import FAST_BOOT, pdu

from lab.emulator.testing import EmulatedLab, write_rig_file
from lab.rig import Rig


@pytest.fixture(scope="session")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("emu")


@pytest.fixture(scope="session")
def lab(lab_dir: Path) -> Iterator[EmulatedLab]:
    """One emulated rig (good firmware 2.0.0, fast boot) shared by the session's tests."""
    rig_file = write_rig_file(lab_dir, ("stb-a",), boot=FAST_BOOT)
    with EmulatedLab(rig_file) as running:
        yield running


@pytest.fixture()
def rig(lab: EmulatedLab) -> Iterator[Rig]:
    """The shared rig, powered off again after each test (so each test starts from power-off)."""
    r = lab.rigs["stb-a"]
    yield r
    with contextlib.suppress(urllib.error.URLError, OSError):
        pdu(r, 0)
