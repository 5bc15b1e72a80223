"""Warranty check end to end on emulated returned units: the verdict each unit's history calls for,
stored with its evidence, and refusals that protect the customer (wrong unit on the bench)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest
import yaml
from support import FAST_BOOT

from lab.emulator.testing import EmulatedLab, rig_entry
from lab.rma import RmaStore

pytestmark = pytest.mark.slow
CATALOGUE = {"2.1.0": [{"kind": "decoder_freeze", "after_zaps": 3}]}


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    d = tmp_path_factory.mktemp("warranty")
    units = [
        rig_entry(d, "rma-fwbug", firmware={"version": "2.1.0", "build_id": "b210"}, defects=CATALOGUE,
                  serial_number="SN-FWBUG01", boot=FAST_BOOT),
        rig_entry(d, "rma-healthy", defects=CATALOGUE, serial_number="SN-OK01", hardware_history={"brownouts": 1},
                  boot=FAST_BOOT),
        rig_entry(d, "ref-200", defects=CATALOGUE, serial_number="SN-REF200",
                  features=["hdmi", "ir", "ssh", "reference"], boot=FAST_BOOT),
        rig_entry(d, "ref-210", firmware={"version": "2.1.0", "build_id": "b210"}, defects=CATALOGUE,
                  serial_number="SN-REF210", features=["hdmi", "ir", "ssh", "reference"], boot=FAST_BOOT),
    ]  # fmt: skip
    rig_file = d / "rigs.yaml"
    rig_file.write_text(yaml.safe_dump({"rigs": units}, sort_keys=False))
    db = d / "rma.sqlite"
    with EmulatedLab(rig_file):
        yield {"dir": d, "rigs": rig_file, "db": db}


def check(bench, case: int, rig: str, runs: int = 1, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:  # noqa: ANN001, E501
    cmd = [sys.executable, "-m", "lab.cli", "warranty", "check", str(case), "--rig", rig, "--rigs", str(bench["rigs"])]
    cmd += list(extra)
    cmd += ["--db", str(bench["db"]), "--runs", str(runs), "--emulate", "never", "--json"]
    cmd += ["--run-dir", str(bench["dir"] / f"case{case}")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def new_case(bench, serial: str, complaint: str) -> int:  # noqa: ANN001
    with RmaStore.open(bench["db"]) as store:
        return store.create_case(serial, complaint, dt.date(2026, 11, 20), model="STB-4K-X1", actor="desk")


def test_fault_that_reproduces_on_the_reference_unit_is_a_firmware_defect(bench) -> None:  # noqa: ANN001
    case = new_case(bench, "SN-FWBUG01", "the picture freezes after changing channels")
    res = check(bench, case, "rma-fwbug")
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout)
    assert out["verdict"] == "firmware_defect"
    assert out["ruleset"] == "warranty-rules/1"
    with RmaStore.open(bench["db"]) as store:
        shown = store.case(case)
    assert shown["state"] == "diagnosed"
    kinds = {e["kind"]: e["value"] for e in shown["verdict"]["evidence_rows"]}
    assert "reference unit ref-210" in kinds["reference_reproduction"]  # ref-200 runs 2.0.0: not comparable
    assert kinds["functional_fault"].startswith("video-frozen")
    assert "tamper" in kinds and "verified_boot" in kinds


def test_complaint_that_does_not_reproduce_is_no_fault_found(bench) -> None:  # noqa: ANN001
    case = new_case(bench, "SN-OK01", "box freezes sometimes when zapping")
    res = check(bench, case, "rma-healthy")
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout)
    assert out["verdict"] == "no_fault_found"
    assert "No fault reproduced" in out["justification"]


def test_wrong_unit_on_the_bench_is_refused_without_a_verdict(bench) -> None:  # noqa: ANN001
    case = new_case(bench, "SN-SOMEONE-ELSE", "no picture")
    res = check(bench, case, "rma-healthy")
    assert res.returncode == 4
    assert "holds device SN-OK01, not the case's device SN-SOMEONE-ELSE" in res.stderr
    with RmaStore.open(bench["db"]) as store:
        assert store.case(case)["verdict"] is None


HANGS = """
import time

def test_hangs(shell):
    while True:
        time.sleep(1)
"""
SKIPPED = """
import pytest

def test_skips_itself(shell):
    pytest.skip("this bench cannot check it")
"""


@pytest.mark.parametrize(("text", "code", "outcome"), [(HANGS, 2, "timed_out"), (SKIPPED, 5, "skipped")],
                         ids=["hangs", "skipped"])  # fmt: skip
def test_a_diagnostic_that_hangs_or_is_skipped_is_inconclusive_and_the_case_stays_open(
    bench,
    tmp_path,
    text: str,
    code: int,
    outcome: str,  # noqa: ANN001
) -> None:
    diag = tmp_path / "test_diag.py"
    diag.write_text(text)
    case = new_case(bench, "SN-OK01", "no picture after standby")
    res = check(bench, case, "rma-healthy", extra=("--scenario", str(diag), "--test-timeout", "3"))
    assert res.returncode == code, res.stdout + res.stderr
    out = json.loads(res.stdout)
    assert out["verdict"] == "inconclusive" and "did not run and pass" in out["reason"], out
    assert f" {outcome}: " in out["reason"], out
    with RmaStore.open(bench["db"]) as store:
        shown = store.case(case)
    assert shown["verdict"] is None and shown["state"] == "diagnosing", "no verdict stored; the case stays open"
