"""A rig's pytest started with SIGINT ignored (a background job, cron, a CI step) still stops on SIGINT.

The job runner stops a rig's pytest with SIGINT first, so pytest ends the test and writes its
summary; a process started by a shell in the background inherits SIGINT ignored, and without the
plugin taking it back that stop waited out its grace and came down to SIGTERM with nothing written.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support import eventually

from lab.emulator.testing import write_rig_file

REPO = Path(__file__).resolve().parents[2]

HELD = """
import os
import threading
from pathlib import Path


def test_held():
    Path(os.environ["HELD_FLAG"]).write_text("held")
    threading.Event().wait(60)  # held until the test below interrupts this pytest (bounded)
"""


@pytest.mark.parametrize("events", [True, False], ids=["runner-driven", "plain"])
def test_a_runner_driven_pytest_takes_sigint_back_when_it_was_started_ignoring_it(tmp_path: Path, events: bool) -> None:
    rigs = write_rig_file(tmp_path / "lab", ["stb-a"])
    (tmp_path / "test_held.py").write_text(HELD)
    run = tmp_path / "run"
    flag = tmp_path / "held.flag"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rigs", str(rigs), "--emulate", "never",
            "--run-dir", str(run), "--summary", str(run / "summary.json"), str(tmp_path / "test_held.py")]  # fmt: skip
    if events:
        argv += ["--events", str(run / "events.jsonl")]
    # as a shell starts a background job: SIGINT ignored, inherited through exec
    proc = subprocess.Popen(["sh", "-c", "trap '' INT; exec \"$@\"", "sh", *argv], cwd=tmp_path,
                            env=dict(os.environ, HELD_FLAG=str(flag), PYTHONPATH=str(REPO)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        eventually(flag.exists, timeout=60, what="the held test running")
        proc.send_signal(signal.SIGINT)
        if events:
            out, _ = proc.communicate(timeout=30)
            assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
            assert (run / "summary.json").exists(), "the interrupted run wrote its summary"
        else:  # the control: without a runner, an ignored SIGINT stays ignored (the launcher's choice)
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(timeout=3)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
