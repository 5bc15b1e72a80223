"""One exit-code table: the README's, `stblab --help`'s and every command's, with a test per command and code.

The end-to-end codes of each command are tested where the command is (tests/plugin/test_runner.py,
tests/firmware/test_gate_e2e.py, tests/warranty/test_check_e2e.py, tests/jobs/test_job.py); here:
the table itself, bad input for each command, and each policy's decision for every outcome."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from lab.firmware.gate import GateResult
from lab.jobs import JobResult, RigResult, TestResult
from lab.outcome import EXIT_CODE_TABLE, ExitCode, Outcome

from .conftest import write_rigs

REPO = Path(__file__).resolve().parents[2]


def stblab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd or REPO)  # fmt: skip


def test_the_readme_table_is_the_one_every_command_uses():
    text = (REPO / "README.md").read_text()
    rows = re.findall(r"^\| (\d) \| ([a-z ]+) \| (.+) \|$", text, re.M)
    assert [(int(c), n, m) for c, n, m in rows] == list(EXIT_CODE_TABLE)
    assert [c for c, _, _ in EXIT_CODE_TABLE] == [int(c) for c in ExitCode]


def test_stblab_help_prints_the_table():
    out = stblab("--help").stdout
    for code, name, meaning in EXIT_CODE_TABLE:
        assert f"  {code}  {name:<14}  {meaning}" in out


@pytest.mark.parametrize("command", [["lab"], ["firmware", "gate"], ["warranty", "check"]])
def test_each_command_help_names_the_exit_codes(command):
    out = " ".join(stblab(*command, "--help").stdout.split())  # rich wraps the epilog
    assert "4 bad input" in out and "5 incomplete" in out, out


def test_bad_input_is_4_for_every_command(tmp_path):
    rigs = write_rigs(tmp_path / "lab")
    lab = stblab("lab", "--rigs", str(tmp_path / "missing.yaml"), "--run-dir", str(tmp_path / "r1"))
    assert lab.returncode == ExitCode.BAD_INPUT, lab.stderr
    gate = stblab("firmware", "gate", str(tmp_path / "missing.img"), "--rigs", str(rigs), "--emulate", "never",
                  "--run-dir", str(tmp_path / "r2"))  # fmt: skip
    assert gate.returncode == ExitCode.BAD_INPUT and "unreadable" in gate.stderr, gate.stderr
    warranty = stblab("warranty", "check", "1", "--rig", "nope", "--rigs", str(rigs), "--db", str(tmp_path / "db"))
    assert warranty.returncode == ExitCode.BAD_INPUT and "no rig named 'nope'" in warranty.stderr, warranty.stderr


def test_lab_with_a_selection_that_collects_nothing_is_bad_input(tmp_path):
    rigs = write_rigs(tmp_path / "lab")
    res = stblab("lab", "--rigs", str(rigs), "--rig", "good", "--run-dir", str(tmp_path / "run"),
                 "--pytest-args", "-k nomatchxyz")  # fmt: skip
    assert res.returncode == ExitCode.BAD_INPUT, res.stdout + res.stderr
    assert "the suite selects no tests" in res.stderr
    assert not list((tmp_path / "run").glob("*/pytest.log")), "nothing ran, no emulator was started"


def _job(*outcomes: Outcome, stopped: str | None = None) -> JobResult:
    rig = RigResult("a", planned=[f"t{i}" for i in range(len(outcomes))], ended="finished")
    rig.tests = [TestResult(f"t{i}", o) for i, o in enumerate(outcomes)]
    return JobResult(Path("."), rigs=[rig], stopped=stopped)


@pytest.mark.parametrize(
    ("outcomes", "code"),
    [
        ((Outcome.PASSED, Outcome.PASSED), ExitCode.OK),
        ((Outcome.PASSED, Outcome.DEVICE_FAULT), ExitCode.DEVICE_FAULT),
        ((Outcome.PASSED, Outcome.INFRA_ERROR), ExitCode.INFRA_ERROR),
        ((Outcome.PASSED, Outcome.TIMED_OUT), ExitCode.INFRA_ERROR),
        ((Outcome.PASSED, Outcome.TEST_ERROR), ExitCode.TEST_ERROR),
        ((Outcome.PASSED, Outcome.SKIPPED), ExitCode.INCOMPLETE),
        ((Outcome.PASSED, Outcome.NOT_RUN), ExitCode.INCOMPLETE),
        ((Outcome.DEVICE_FAULT, Outcome.TIMED_OUT), ExitCode.DEVICE_FAULT),
    ],
)
def test_job_and_gate_decide_from_every_outcome(outcomes, code):
    job = _job(*outcomes)
    assert job.exit_code() is code
    assert job.all_passed() is (code is ExitCode.OK)
    gate = GateResult(image={}, rigs=["a"], job_exit=int(job.exit_code()), all_passed=job.all_passed())
    assert gate.exit_code == code
    assert ("may ship" in gate.verdict()) is (code is ExitCode.OK), gate.verdict()


def test_a_stopped_job_or_an_empty_gate_never_passes():
    assert _job(Outcome.PASSED, stopped="SIGTERM").exit_code() is ExitCode.INCOMPLETE
    assert not _job(Outcome.PASSED, stopped="SIGTERM").all_passed()
    assert GateResult(image={}, rigs=["a"]).exit_code == ExitCode.INCOMPLETE, "no job ran: nothing shown"
    assert not JobResult(Path(".")).all_passed()
