"""Allure reports that show the truth: two rigs' results of one test are two tests, not a retry.

The results are written by the real allure-pytest (a pytest run per rig into one folder, as the
main job does) and the report by the real Allure 3 from package-lock.json (``npx --no-install``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lab.allure_report import AllureUnavailable, generate_report, npx_command, separate_rigs

SUITE = """
import os
import allure

def test_standby_and_resume():
    allure.dynamic.label("rig", os.environ["RIG"])
    assert os.environ["RIG"] != "stb-b", "black screen after resume"

def test_zap():
    allure.dynamic.label("rig", os.environ["RIG"])
"""


def run_rig(tmp: Path, rig: str, results: Path) -> None:
    (tmp / "test_suite.py").write_text(SUITE)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:stblab",
        str(tmp / "test_suite.py"),
        "--alluredir",
        str(results),
    ]
    subprocess.run(cmd, cwd=tmp, env=dict(os.environ, RIG=rig), capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def two_rigs_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The results of the suite run once per rig (two pytest runs), made once for the module."""
    tmp = tmp_path_factory.mktemp("allure")
    results = tmp / "allure-results"
    for rig in ("stb-a", "stb-b"):
        run_rig(tmp, rig, results)
    assert len(list(results.glob("*-result.json"))) == 4
    return results


@pytest.fixture
def two_rigs(two_rigs_results: Path, tmp_path: Path) -> Path:
    """A fresh copy of the two rigs' results (tests rewrite them)."""
    return Path(shutil.copytree(two_rigs_results, tmp_path / "allure-results"))


def test_each_rig_gets_its_own_history_id_and_a_rig_parameter(two_rigs: Path) -> None:
    assert separate_rigs(two_rigs, firmware="2.1.0") == 4
    results = [json.loads(p.read_text()) for p in two_rigs.glob("*-result.json")]
    ids = {(r["name"], r["historyId"]) for r in results}
    assert len(ids) == 4
    for r in results:
        rig = next(lab["value"] for lab in r["labels"] if lab["name"] == "rig")
        assert {"name": "rig", "value": rig} in r["parameters"]
    assert all(any(lab == {"name": "firmware", "value": "2.1.0"} for lab in r["labels"]) for r in results)
    assert separate_rigs(two_rigs, firmware="2.1.0") == 0  # idempotent: the job may call it twice


@pytest.mark.slow
@pytest.mark.real_peer
def test_allure_3_report_counts_every_rig_and_no_retries(two_rigs: Path, tmp_path: Path) -> None:
    try:
        npx_command()
    except AllureUnavailable as exc:
        pytest.skip(str(exc))
    s = generate_report([two_rigs], tmp_path / "report", name="two rigs")
    assert (s.total, s.passed, s.failed, s.retries) == (4, 3, 1, 0)
    assert s.index.is_file() and "<html" in s.index.read_text().lower()


def test_missing_results_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        generate_report([tmp_path / "nothing-here"], tmp_path / "out")
