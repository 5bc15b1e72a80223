"""The firmware gate end to end on an emulated rig: a good build passes, a defective one fails with
its new fault named, and a rig that cannot be reached is an infra error, never a pass."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import FAST_BOOT

from lab.emulator.testing import EmulatedLab, write_rig_file
from lab.firmware import build_image, generate_key
from lab.firmware.gate import EXIT_INFRA, EXIT_NEW_FAULTS, EXIT_PASS
from lab.outcome import ExitCode

pytestmark = pytest.mark.slow
MODEL = "STB-4K-X1"


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("gate")
    key = generate_key(d / "keys" / "vendor_ed25519")
    rig_file = write_rig_file(
        d,
        ["gate-1"],
        defects={"2.1.0": [{"kind": "decoder_freeze", "after_zaps": 2}], "2.2.0": [{"kind": "boot_fail"}]},
        boot=FAST_BOOT,
    )
    data = yaml.safe_load(rig_file.read_text())
    data["rigs"][0]["firmware"] = {"trusted_keys": [str(d / "keys" / "vendor_ed25519.pub")]}
    rig_file.write_text(yaml.safe_dump(data))
    for version in ("2.0.1", "2.1.0", "2.2.0"):
        (d / f"fw-{version}.img").write_bytes(build_image(model=MODEL, version=version, key=key))
    return {"dir": d, "rigs": rig_file}


def gate(
    bench: dict[str, Path], version: str, run: str, suite: str, *, relative: bool = False, extra: list[str] = ()
) -> tuple[subprocess.CompletedProcess[str], dict]:
    """Run the gate; ``relative``: from the bench folder, naming the rig file and database relative to it."""
    d = bench["dir"]
    run_dir = d / run
    rigs, db = (bench["rigs"].relative_to(d), "rma.sqlite") if relative else (bench["rigs"], d / "rma.sqlite")
    cmd = [sys.executable, "-m", "lab.cli", "firmware", "gate", str(d / f"fw-{version}.img")]
    cmd += ["--rigs", str(rigs), "--select", f"model={MODEL}", "--suite", suite]
    cmd += ["--run-dir", str(run_dir), "--rma-db", str(db), "--emulate", "never", *extra]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=d if relative else None)
    data = json.loads((run_dir / "gate.json").read_text()) if (run_dir / "gate.json").exists() else {}
    return res, data


def test_good_build_passes_and_defective_build_fails_with_new_fault(bench: dict[str, Path]) -> None:
    with EmulatedLab(bench["rigs"]):
        good, g = gate(bench, "2.0.1", "good", "scenarios/test_boot.py")
        assert good.returncode == EXIT_PASS, good.stdout + good.stderr
        assert g["flashed"][0]["version_after"] == "2.0.1" and g["flashed"][0]["uploaded"]
        assert "PASS: the build may ship" in good.stdout
        junit = (bench["dir"] / "good" / "gate-1" / "junit.xml").read_text()
        assert 'name="firmware.version" value="2.0.1"' in junit
        assert 'name="firmware.sha256"' in junit

        bad, b = gate(bench, "2.1.0", "bad", "scenarios/test_zapping.py")
        assert bad.returncode == EXIT_NEW_FAULTS, bad.stdout + bad.stderr
        assert b["flashed"][0]["version_after"] == "2.1.0"
        assert b["new_faults"] and b["new_faults"][0]["fault_id"] is not None
        assert "NEW fault #" in bad.stdout and "video-frozen" in bad.stdout

        # The same build again: the fault is known now, so the gate does not call it new -- and the
        # build still may not ship. Run from another folder with relative paths: the suite (run in
        # the repository) sees the same files.
        again, a = gate(bench, "2.1.0", "again", "scenarios/test_zapping.py", relative=True)
        assert a["flashed"][0]["reason"].startswith("already running")
        assert not a["new_faults"] and a["known_faults"], again.stdout + again.stderr
        assert again.returncode == EXIT_NEW_FAULTS
        assert "known device faults (no new ones)" in again.stdout and "may ship" not in again.stdout.replace(
            "may not ship", ""
        )


def test_unreachable_rig_is_an_infra_error_not_a_pass(bench: dict[str, Path]) -> None:
    res, data = gate(bench, "2.0.1", "norig", "scenarios/test_boot.py")  # no emulator running
    assert res.returncode == EXIT_INFRA, res.stdout + res.stderr
    assert data["rigs_not_run"] == ["gate-1"]
    assert "the lab failed" in res.stdout


def test_build_that_does_not_boot_is_a_filed_device_fault(bench: dict[str, Path]) -> None:
    with EmulatedLab(bench["rigs"]):
        res, data = gate(bench, "2.2.0", "noboot", "scenarios/test_boot.py")
    assert res.returncode == EXIT_NEW_FAULTS, res.stdout + res.stderr
    flashed = data["flashed"][0]
    assert not flashed["ok"] and flashed["kind"] == "device_fault"
    assert "kernel-panic" in flashed["reason"]  # seen on the console while the new slot booted
    assert data["new_faults"][0]["fault_id"] is not None  # filed, with the console log as evidence


@pytest.mark.parametrize(
    "suite", ["scenarios -k nomatchxyz", "-k nomatchxyz", "scenarios/does_not_exist.py"], ids=["k", "k-only", "path"]
)
def test_a_selection_with_no_tests_is_bad_input_before_any_rig(bench: dict[str, Path], suite: str) -> None:
    res, data = gate(bench, "2.0.1", f"nomatch-{abs(hash(suite))}", suite)  # no emulator: nothing is touched
    assert res.returncode == ExitCode.BAD_INPUT, res.stdout + res.stderr
    assert "selects no tests" in res.stderr or "not found" in res.stderr, res.stderr
    assert "may ship" not in res.stdout and not data


# The tests around the hang carry a generous limit of their own, so --test-timeout can be short (it
# ends the hang) without a slow login on a busy host timing them out too.
HANG_SUITE = """
import time
import pytest

@pytest.mark.stb_timeout(120)
def test_boots(shell):
    pass

def test_hangs(shell):
    while True:
        time.sleep(1)

@pytest.mark.stb_timeout(120)
def test_skips_itself(shell):
    pytest.skip("cannot check this here")
"""


def test_a_hung_or_skipped_test_never_lets_the_build_ship(bench: dict[str, Path], tmp_path: Path) -> None:
    suite = tmp_path / "test_gate_hang.py"
    suite.write_text(HANG_SUITE)
    with EmulatedLab(bench["rigs"], factory_reset=True):  # an earlier test may have left a broken build
        res, data = gate(bench, "2.0.1", "hang", str(suite), extra=["--test-timeout", "3"])
        skip, sdata = gate(bench, "2.0.1", "skip", f"{suite} -k 'boots or skips'")
    assert res.returncode == ExitCode.INFRA_ERROR, res.stdout + res.stderr
    assert [e["test"].rsplit("::", 1)[-1] for e in data["timed_out"]] == ["test_hangs"]
    assert data["passed"] == 2 or data["passed"] == 1, data
    assert "PASS" not in res.stdout and "timed out on gate-1" in res.stdout
    assert skip.returncode == ExitCode.INCOMPLETE, skip.stdout + skip.stderr
    assert [e["outcome"] for e in sdata["not_run"]] == ["skipped"] and "INCOMPLETE" in skip.stdout
    assert not _faults(bench), "nothing filed: the box was not shown at fault"


def _faults(bench: dict[str, Path]) -> list:
    from lab.rma import RmaStore

    db = bench["dir"] / "rma.sqlite"
    if not db.exists():
        return []
    with RmaStore(db) as store:
        return [f for f in store.faults() if "hang" in repr(f) or "skips" in repr(f)]
