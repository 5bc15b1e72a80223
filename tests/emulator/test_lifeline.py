"""Children die with their parent: a killed pytest (SIGKILL, SIGTERM, SIGINT) leaves no emulator behind.

Each test starts a parent process, learns the pids of what it started (with their start times, so a
reused pid never passes for a survivor), kills the parent and waits (bounded) until every one of
them is gone. A control child started *without* :func:`lab.lifeline.tied` shows the
check sees a survivor when there is one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import eventually

from lab.lifeline import supported

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not supported(), reason="needs Linux and util-linux setpriv (PR_SET_PDEATHSIG)")

Proc = tuple[int, str]  # pid and start time (field 22 of /proc/PID/stat)


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return [str(pid), "comm", *text.rpartition(")")[2].split()]  # fields 1.. as in proc(5)


def _identity(pid: int) -> Proc:
    fields = _stat(pid)
    assert fields is not None, f"process {pid} is not running"
    return pid, fields[21]


def _alive(proc: Proc) -> bool:
    """Running (not a zombie waiting for a non-reaping init) and not a reused pid."""
    fields = _stat(proc[0])
    return fields is not None and fields[2] != "Z" and fields[21] == proc[1]


def _descendants(root: int) -> list[Proc]:
    """``root`` and every live process below it."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and fields[2] != "Z":
            parents.setdefault(int(fields[3]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        ident = _stat(pid)
        if ident is not None:
            found.append((pid, ident[21]))
        todo += parents.get(pid, [])
    return found


def _reap(procs: list[Proc]) -> None:
    for proc in procs:  # only a control or a failed test gets here with something alive
        if _alive(proc):  # never a reused pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc[0], signal.SIGKILL)


@contextlib.contextmanager
def _parent(argv: list[str], log: Path, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], list[Proc]]]:
    """Start the parent under test (output in ``log``); the caller adds what it started to the list.
    On the way out nothing is left, whatever the test found."""
    with log.open("w") as out:
        parent = subprocess.Popen(argv, cwd=log.parent, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    started: list[Proc] = []
    try:
        yield parent, started
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        _reap(started)


def _kill_and_expect_no_survivor(
    parent: subprocess.Popen[str], sig: signal.Signals, started: list[Proc], log: Path | None = None
) -> None:
    parent.send_signal(sig)
    try:
        parent.wait(timeout=60)
    except subprocess.TimeoutExpired:
        # a parent that outlives its signal: what was it doing? (SUITE dumps its stacks on SIGUSR1)
        with contextlib.suppress(ProcessLookupError):
            parent.send_signal(signal.SIGUSR1)
        with contextlib.suppress(subprocess.TimeoutExpired):
            parent.wait(timeout=3)
        tail = ""
        for path in (log, log.with_name("stacks.txt")) if log is not None else ():
            tail += f"--- {path.name}:\n" + (path.read_text(errors="replace")[-6000:] if path.exists() else "(none)\n")
        raise AssertionError(f"the parent did not exit within 60 s of {sig.name}:\n{tail}") from None
    eventually(lambda: not [p for p in started if _alive(p)], timeout=30,
               what=f"every process the {sig.name}ed parent started gone: {started}")  # fmt: skip


HOLDER = """
import os, sys, subprocess, threading
from lab.lifeline import tied
held = subprocess.Popen(tied(["sleep", "120"]), start_new_session=True)
loose = subprocess.Popen(["sleep", "120"], start_new_session=True)
print(held.pid, loose.pid, flush=True)
threading.Event().wait(120)
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=lambda s: s.name)
def test_a_tied_child_dies_with_its_parent_and_a_loose_one_does_not(sig):
    parent = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True, cwd=REPO,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))  # fmt: skip
    assert parent.stdout is not None
    tied_pid, loose_pid = (int(x) for x in parent.stdout.readline().split())
    tied, loose = _identity(tied_pid), _identity(loose_pid)
    try:
        parent.send_signal(sig)
        parent.wait(timeout=10)
        eventually(lambda: not _alive(tied), timeout=10, what="the tied child gone")
        assert _alive(loose), "the control (not tied) outlives its parent: the check sees survivors"
    finally:
        _reap([tied, loose])


SUITE = """
import faulthandler
import os
import signal
import threading
from pathlib import Path

from lab.emulator.launcher import EmulatedLab


STACKS = open(Path(os.environ["LIFELINE_PID"]).with_name("stacks.txt"), "w")
faulthandler.register(signal.SIGUSR1, file=STACKS, all_threads=True)  # if it outlives its signal


def test_holds_the_lab():
    with EmulatedLab(os.environ["LIFELINE_RIGS"], ready_timeout=90) as lab:
        Path(os.environ["LIFELINE_PID"]).write_text(str(lab.proc.pid))
        threading.Event().wait(120)  # held until the outer test kills this pytest (bounded)
"""


@pytest.mark.emulator
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_killed_pytest_leaves_no_emulator_process_behind(tmp_path, sig):
    from support import FAST_BOOT

    from lab.emulator.testing import write_rig_file

    rigs = write_rig_file(tmp_path / "lab", ["stb-a", "stb-b"], boot=FAST_BOOT)
    (tmp_path / "test_hold.py").write_text(SUITE)
    pid_file = tmp_path / "emulate.pid"
    env = dict(os.environ, LIFELINE_RIGS=str(rigs), LIFELINE_PID=str(pid_file), PYTHONPATH=str(REPO))
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_hold.py")]
    log = tmp_path / "pytest.log"
    with _parent(argv, log, env) as (child, started):
        emulate = int(eventually(lambda: pid_file.exists() and pid_file.read_text(), timeout=120,
                                 what=f"the emulated lab up ({log})"))  # fmt: skip
        # stblab emulate and one emulator process per rig
        started += eventually(lambda: len(d := _descendants(emulate)) >= 3 and d, timeout=10, what="the rig processes")
        _kill_and_expect_no_survivor(child, sig, started, log)


BLOCKING = """
import threading
from pathlib import Path


def test_blocks(stb):
    Path(__file__).with_name("running-" + stb.rig_name).touch()
    threading.Event().wait(120)  # held until the outer test kills stblab lab (bounded)
"""


@pytest.mark.slow
@pytest.mark.emulator
def test_a_sigkilled_stblab_lab_leaves_no_pytest_or_emulator_behind(tmp_path):
    from support import FAST_BOOT

    from lab.emulator.testing import write_rig_file

    rigs = write_rig_file(tmp_path / "lab", ["good", "bad"], boot=FAST_BOOT)
    suite = tmp_path / "suite" / "test_block.py"
    suite.parent.mkdir()
    suite.write_text(BLOCKING)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "lab.cli", "lab", "--rigs", str(rigs), "--all-good", "--run-dir", str(run),
           "--rma-db", str(tmp_path / "rma.sqlite"), "--suite", str(suite)]  # fmt: skip
    log = tmp_path / "lab.log"
    with _parent(cmd, log, dict(os.environ, PYTHONPATH=str(REPO))) as (lab, started):
        running = [suite.with_name(f"running-{r}") for r in ("good", "bad")]

        def in_the_test() -> bool:
            assert lab.poll() is None, f"stblab lab ended before the test blocked: {log.read_text()}"
            return all(p.exists() for p in running)

        eventually(in_the_test, timeout=180, what=f"both rigs in the test ({log})")
        # stblab emulate + 2 rig processes, 2 pytest runs
        started += [p for p in _descendants(lab.pid) if p[0] != lab.pid]
        assert len(started) >= 5, (started, log.read_text())
        _kill_and_expect_no_survivor(lab, signal.SIGKILL, started)


@pytest.mark.emulator
@pytest.mark.skipif(os.geteuid() != 0, reason="raising a priority needs root (CAP_SYS_NICE)")
def test_the_emulated_box_runs_ahead_of_the_hosts_other_work(emulated_lab):
    """Every thread of a rig's emulator process has the emulator's niceness (a real box has its own CPU)."""
    from lab.emulator.process import NICENESS

    lab = emulated_lab()
    rigs = [
        p for p in _descendants(lab.proc.pid) if "lab.emulator.process" in Path(f"/proc/{p[0]}/cmdline").read_text()
    ]
    assert rigs, "no rig process under stblab emulate"
    for pid, _ in rigs:
        nice = {os.getpriority(os.PRIO_PROCESS, int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}
        assert nice == {NICENESS}, (pid, nice)
