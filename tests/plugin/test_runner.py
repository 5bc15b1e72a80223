"""``stblab lab``: the main job's rig-file derivation, firmware plan, exit codes, and a real run."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from lab.errors import RigFileError
from lab.outcome import ExitCode
from lab.rig import load_rigs
from lab.runner import derive_rig_file, first_defective, parse_firmware

from .conftest import write_two_rigs

EXIT_DEVICE_FAULT, EXIT_USAGE = ExitCode.DEVICE_FAULT, ExitCode.BAD_INPUT

REPO = Path(__file__).resolve().parents[2]


def test_parse_firmware_checks_names_and_versions():
    assert parse_firmware(["stb-b=2.1.0"], ["stb-a", "stb-b"]) == {"stb-b": "2.1.0"}
    assert parse_firmware(["all=2.0.0"], ["a", "b"]) == {"a": "2.0.0", "b": "2.0.0"}
    with pytest.raises(RigFileError, match="no emulated rig named 'nope'"):
        parse_firmware(["nope=2.0.0"], ["stb-a"])
    with pytest.raises(RigFileError, match="expected RIG=VERSION"):
        parse_firmware(["2.0.0"], ["stb-a"])


def test_first_defective_is_the_lowest_catalogued_version_compared_as_versions():
    emulate = {"defects": {"2.10.0": [{"kind": "sshd_dies"}], "2.9.0": [{"kind": "memory_leak"}], "3.0": []}}
    assert first_defective(emulate) == "2.9.0"
    assert first_defective({"defects": {}}) is None
    assert first_defective({"defects": {"1.0": [{"kind": "boot_fail"}]}}) is None


def test_derived_rig_file_keeps_devices_inside_the_run_folder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    derived, versions = derive_rig_file(REPO / "rigs" / "emulated.yaml", run, {"stb-b": "2.1.0"})
    rigs = load_rigs(derived)
    assert versions == {"stb-a": "2.0.0", "stb-b": "2.1.0"}
    for rig in rigs.values():
        assert rig.emulate is not None and Path(str(rig.emulate.state_dir)).is_relative_to(run)
        assert rig.ssh is not None and rig.ssh.known_hosts == run / "known_hosts"
        assert rig.ir is not None and rig.ir.remote.exists(), "remote file resolved against the original rig file"
    raw = yaml.safe_load(derived.read_text())
    assert raw["rigs"][1]["emulate"]["firmware"]["version"] == "2.1.0"
    # the original is untouched
    assert "2.1.0" not in yaml.safe_dump(
        yaml.safe_load((REPO / "rigs" / "emulated.yaml").read_text())["rigs"][1]["emulate"]["firmware"]
    )


def test_bad_rig_file_exits_with_the_usage_code(tmp_path):
    bad = tmp_path / "rigs.yaml"
    bad.write_text("rigs: []\n")
    proc = subprocess.run(
        [sys.executable, "-m", "lab.cli", "lab", "--rigs", str(bad), "--run-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == EXIT_USAGE
    assert "non-empty list of rigs" in proc.stderr


def test_a_scenario_file_that_does_not_import_is_a_test_error_not_a_pass(pytester, run_inner, tmp_path):
    """Collection errors stop pytest before any test: the summary (which the main job and the gate
    read) must say so instead of "0 passed, outcome ok"."""
    pytester.makepyfile(test_broken="import no_such_module_stblab\n\ndef test_x(rig):\n    pass\n")
    run = run_inner(write_two_rigs(tmp_path / "lab"), "--rig", "good")
    assert run.result.ret == 2
    summary = run.summary()
    assert summary["outcome"] == "test_error" and summary["errors"] == 1
    [entry] = summary["entries"]
    assert entry["kind"] == "test_error" and "no_such_module_stblab" in entry["reason"]


SUITE = """
def test_zaps(shell, stb):
    for i in range(30):
        stb.run(f"tune {1 + i % 8}")
"""


@pytest.mark.slow
def test_main_job_shows_a_passing_rig_and_a_filed_fault(tmp_path):
    """Two emulated rigs; without --firmware the last one runs its first defective version."""
    rig_file = write_two_rigs(tmp_path / "lab")
    raw = yaml.safe_load(rig_file.read_text())
    raw["rigs"][1]["emulate"]["firmware"] = {"version": "2.0.0"}  # the runner must switch it to 2.3.0
    rig_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    suite = tmp_path / "suite" / "test_suite.py"
    suite.parent.mkdir()
    suite.write_text(SUITE)
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "lab.cli", "lab", "--rigs", str(rig_file), "--rig", "good", "--rig", "bad",
         "--run-dir", str(run), "--rma-db", str(tmp_path / "rma.sqlite"), "--suite", str(suite)],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == EXIT_DEVICE_FAULT, proc.stdout + proc.stderr
    assert "rig bad: STB-4K-X1, firmware 2.3.0 (defective firmware from the catalogue)" in proc.stdout
    assert "device fault fault #" in proc.stdout and "(new)" in proc.stdout and "oom-kill" in proc.stdout
    first = proc.stdout.split("stblab lab summary", 1)[1].splitlines()[1].strip()
    assert first == (
        "good: planned 1, run 1, passed 1, failed 0, errors 0, timed out 0, skipped 0, not run 0 | "
        "bad: planned 1, run 1, passed 0, failed 1, errors 0, timed out 0, skipped 0, not run 0"
    ), proc.stdout
    job = json.loads((run / "job.json").read_text())
    assert job["exit_code"] == 1 and not job["all_passed"]
    info = {r["rig"]: r["info"] for r in job["rigs"]}
    assert info["good"]["firmware_version"] == "2.0.0"
    assert info["bad"]["firmware_version"] == "2.3.0"
    for rig in ("good", "bad"):
        cases = list(ET.parse(run / rig / "junit.xml").getroot().iter("testcase"))
        assert len(cases) == 1
    assert (run / "summary.html").read_text().count("<tr>") >= 3
    results = [json.loads(p.read_text()) for p in (run / "allure-results").glob("*-result.json")]
    # Each rig's run of the test is its own Allure test (else the report shows one test and a "retry").
    rigs = {p["value"].strip('"') for r in results for p in r.get("parameters", []) if p["name"] == "rig"}
    assert rigs == {"good", "bad"}, results
    assert len({r["historyId"] for r in results}) == 2
    assert "Allure" in proc.stdout and "stblab web --db" in proc.stdout
