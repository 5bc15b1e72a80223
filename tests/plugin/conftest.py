"""Emulated rigs for the plugin's tests: one emulator per module, real protocols end to end.

``two_rigs`` is a rig file with a good rig (firmware 2.0.0) and a defective one (2.3.0 with a
fast memory leak: a few ``tune`` commands end in an OOM kill on the console), started once per
module. ``run_inner`` runs pytest in a subprocess (pytester) with the plugin against them.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import FAST_BOOT

from lab.emulator.testing import EmulatedLab, rig_entry

REPO = Path(__file__).resolve().parents[2]
LEAK = {"2.3.0": [{"kind": "memory_leak", "kb_per_zap": 150000}]}
BRICK = {"2.9.0": [{"kind": "boot_fail"}]}


def write_two_rigs(directory: Path) -> Path:
    """A rig file with ``good`` (2.0.0), ``bad`` and ``bad2`` (2.3.0, leaking memory on every zap)
    and ``brick`` (2.9.0, panics while booting)."""
    directory.mkdir(parents=True, exist_ok=True)
    rigs = [
        rig_entry(directory, "good", firmware="2.0.0", boot=FAST_BOOT),
        rig_entry(directory, "bad", firmware="2.3.0", defects=LEAK, boot=FAST_BOOT),
        rig_entry(directory, "bad2", firmware="2.3.0", defects=LEAK, boot=FAST_BOOT),
        rig_entry(directory, "brick", firmware="2.9.0", defects=BRICK, boot=FAST_BOOT),
    ]
    path = directory / "rigs.yaml"
    path.write_text(yaml.safe_dump({"rigs": rigs}, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def two_rigs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The two-rig file, with its emulator running for the whole module."""
    path = write_two_rigs(tmp_path_factory.mktemp("lab"))
    with EmulatedLab(path, rigs=["good", "bad", "bad2"]):
        yield path


@dataclass
class InnerRun:
    """A finished inner pytest run and where it wrote things."""

    result: Any
    run_dir: Path
    db: Path

    def junit(self) -> ET.Element:
        return ET.parse(self.run_dir / "junit.xml").getroot()

    def properties(self, name: str) -> dict[str, str]:
        case = next(c for c in self.junit().iter("testcase") if c.get("name") == name)
        return {p.get("name"): p.get("value") for p in case.iter("property")}  # type: ignore[misc]

    def summary(self) -> dict[str, Any]:
        return json.loads((self.run_dir / "summary.json").read_text())

    def allure_results(self) -> list[dict[str, Any]]:
        folder = self.run_dir / "allure-results"
        return [json.loads(p.read_text()) for p in folder.glob("*-result.json")]

    @property
    def output(self) -> str:
        return self.result.stdout.str()


@pytest.fixture
def run_inner(pytester: pytest.Pytester, tmp_path: Path) -> Any:
    """``run_inner(rig_file, *args, db=None)``: pytest in a subprocess with the lab turned on."""

    def run(rig_file: Path, *args: str, db: Path | None = None, run_dir: Path | None = None) -> InnerRun:
        run_dir = run_dir or tmp_path / f"run{len(list(tmp_path.glob('run*')))}"
        db = db or tmp_path / "rma.sqlite"
        result = pytester.runpytest_subprocess(
            "--rigs", str(rig_file), "--emulate", "never", "--run-dir", str(run_dir), "--rma-db", str(db),
            # plugins the inner runs don't use: skipping them saves a second per run (pytester drops
            # the PYTEST_ADDOPTS that tests/conftest.py sets for the same reason)
            "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:labgrid",
            "-p", "no:anyio", *args, timeout=240,
        )  # fmt: skip
        return InnerRun(result, run_dir, db)

    return run
