"""Fixtures for tests/labgrid: emulated rigs behind a real labgrid coordinator and two exporters."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    import labgrid  # noqa: F401
except ImportError:
    if os.environ.get("CI"):  # CI installs the dev extra, which has labgrid: missing is a broken install
        raise
    pytest.skip("labgrid is an optional extra: pip install 'stblab[labgrid]'", allow_module_level=True)

from labgrid_grid import Grid  # noqa: E402
from support import FAST_BOOT  # noqa: E402

from lab.emulator.testing import EmulatedLab, write_rig_file  # noqa: E402
from lab.labgrid.models import write_model_facts  # noqa: E402
from lab.rig import Rig  # noqa: E402


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the labgrid lab talk to real programs (coordinator, exporters) and the emulator."""
    for item in items:
        if "emulated" in getattr(item, "fixturenames", ()) and "labgrid" in item.keywords:
            item.add_marker(pytest.mark.real_peer)
            item.add_marker(pytest.mark.emulator)


@pytest.fixture(scope="session")
def emulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Rig], Path]]:
    """Two emulated boxes (stb-a, stb-b) started with `python3 -m lab.cli emulate`, and their model facts."""
    if not shutil.which("labgrid-coordinator"):
        pytest.fail("labgrid-coordinator not on PATH although labgrid is installed")
    root = tmp_path_factory.mktemp("lg-emu")
    rig_file = write_rig_file(root, ["stb-a", "stb-b"], boot=FAST_BOOT)
    with EmulatedLab(rig_file) as lab:
        models = root / "models"
        write_model_facts(list(lab.rigs.values()), models)
        yield rig_file, lab.rigs, models


def _two_hosts(rigs: dict[str, Rig]) -> dict[str, list[Rig]]:
    return {"labhost-1": [rigs["stb-a"]], "labhost-2": [rigs["stb-b"]]}


@pytest.fixture(scope="session")
def _shared_grid(
    emulated: tuple[Path, dict[str, Rig], Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Grid]:
    with Grid(tmp_path_factory.mktemp("lg-grid"), _two_hosts(emulated[1])) as g:
        yield g


@pytest.fixture
def grid(_shared_grid: Grid) -> Iterator[Grid]:
    """The session's coordinator with exporters labhost-1 (stb-a) and labhost-2 (stb-b), places synced.

    For tests that leave it as they found it; afterwards every reservation is cancelled and every
    lock released, so a failed test cannot make the next one wait.
    """
    yield _shared_grid
    with _shared_grid.link("stblab-test-admin") as link:
        for res in link.reservations():
            link.cancel_reservation(res.token)
        for name, place in link.places().items():
            if place.acquired:
                link.release(name, fromuser=place.acquired)


@pytest.fixture
def fresh_grid(emulated: tuple[Path, dict[str, Rig], Path], tmp_path: Path) -> Iterator[Grid]:
    """A coordinator and exporters of the test's own, for tests that kill or restart them."""
    with Grid(tmp_path / "grid", _two_hosts(emulated[1])) as g:
        yield g


@pytest.fixture
def models(emulated: tuple[Path, dict[str, Rig], Path]) -> Path:
    return emulated[2]
