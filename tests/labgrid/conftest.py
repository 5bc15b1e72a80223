"""Fixtures for tests/labgrid: emulated rigs behind a real labgrid coordinator and two exporters."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("labgrid", reason="labgrid is an optional extra: pip install 'stblab[labgrid]'")

from labgrid_grid import Grid  # noqa: E402

from lab.emulator.testing import EmulatedLab, write_rig_file  # noqa: E402
from lab.labgrid.models import write_model_facts  # noqa: E402
from lab.rig import Rig  # noqa: E402


@pytest.fixture(scope="session")
def emulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Rig], Path]]:
    """Two emulated boxes (stb-a, stb-b) started with `python3 -m lab.cli emulate`, and their model facts."""
    if not shutil.which("labgrid-coordinator"):
        pytest.fail("labgrid-coordinator not on PATH although labgrid is installed")
    root = tmp_path_factory.mktemp("lg-emu")
    rig_file = write_rig_file(root, ["stb-a", "stb-b"])
    with EmulatedLab(rig_file) as lab:
        models = root / "models"
        write_model_facts(list(lab.rigs.values()), models)
        yield rig_file, lab.rigs, models


@pytest.fixture
def grid(emulated: tuple[Path, dict[str, Rig], Path], tmp_path: Path) -> Iterator[Grid]:
    """A fresh coordinator with exporters labhost-1 (stb-a) and labhost-2 (stb-b), places synced."""
    _, rigs, _ = emulated
    with Grid(tmp_path / "grid", {"labhost-1": [rigs["stb-a"]], "labhost-2": [rigs["stb-b"]]}) as g:
        yield g


@pytest.fixture
def models(emulated: tuple[Path, dict[str, Rig], Path]) -> Path:
    return emulated[2]
