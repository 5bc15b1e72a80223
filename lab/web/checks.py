"""Warranty checks started from the web app: the adapter between a page and the job that runs.

Today a check is the command ``python3 -m lab.cli warranty check CASE --rig RIG ...`` run as a
subprocess whose output lines stream into the case page (server-sent events). The web app talks
only to :class:`CheckRunner` (``start``, ``get``, ``for_case``), so the job runner being rewritten
(``lab.jobs``) can take its place later by implementing the same three methods.

Output lines are kept as the command printed them; the page escapes them (Jinja autoescape, and
:func:`lab.textsafe.for_html` for the SSE payload). Nothing secret is on the command line: the
database URL is passed through the environment (``STBLAB_RMA_URL``), never as an argument.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from lab.lifeline import tied

MAX_LINES = 5000
CHECK_TIMEOUT_S = 900.0
SPAWN_TIMEOUT_S = 60.0  # starting the process (fork and exec), not the check


@dataclass
class CheckJob:
    """One check: its command, state (``running``, ``done``, ``failed``, ``timed_out``) and output."""

    id: int
    case_id: int
    rig: str
    user: str
    started: float
    state: str = "running"
    exit_code: int | None = None
    lines: list[str] = field(default_factory=list)
    ended: float | None = None
    changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def as_dict(self) -> dict[str, object]:
        """What the JSON API shows of a job."""
        return {
            "id": self.id,
            "case": self.case_id,
            "rig": self.rig,
            "user": self.user,
            "state": self.state,
            "exit_code": self.exit_code,
            "started": self.started,
            "ended": self.ended,
            "lines": len(self.lines),
        }

    def wait_for_change(self, seen: int, timeout: float) -> None:
        """Block until there are more than ``seen`` lines or the job ended (at most ``timeout`` s)."""
        with self.changed:
            self.changed.wait_for(lambda: len(self.lines) > seen or self.state != "running", timeout)


class CheckRunner(Protocol):
    """What the web app needs of whatever runs warranty checks."""

    def start(self, case_id: int, rig: str, *, user: str, runs: int = 1) -> CheckJob: ...
    def get(self, job_id: int) -> CheckJob | None: ...
    def for_case(self, case_id: int) -> list[CheckJob]: ...


class SubprocessCheckRunner:
    """Runs ``stblab warranty check`` in a child process per check, one check per rig at a time.

    Each child is tied to the web server (:func:`lab.lifeline.tied`): a server that is killed, even
    with SIGKILL, leaves no check running on a bench rig.
    """

    def __init__(
        self,
        db_url: str,
        rigs: Path,
        *,
        run_root: Path = Path("reports/web-checks"),
        emulate: str = "auto",
        timeout: float = CHECK_TIMEOUT_S,
        python: str = sys.executable,
    ) -> None:
        self.db_url = db_url
        self.rigs = rigs
        self.run_root = run_root
        self.emulate = emulate
        self.timeout = timeout
        self.python = python
        self._jobs: dict[int, CheckJob] = {}
        self._procs: dict[int, subprocess.Popen[str]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def command(self, case_id: int, rig: str, runs: int, run_dir: Path) -> list[str]:
        """The command line of one check (no secret on it)."""
        return [
            self.python,
            "-m",
            "lab.cli",
            "warranty",
            "check",
            str(case_id),
            "--rig",
            rig,
            "--rigs",
            str(self.rigs),
            "--runs",
            str(runs),
            "--emulate",
            self.emulate,
            "--run-dir",
            str(run_dir),
        ]

    def busy_rigs(self) -> set[str]:
        """Rigs with a check running now."""
        with self._lock:
            return {j.rig for j in self._jobs.values() if j.state == "running"}

    def start(self, case_id: int, rig: str, *, user: str, runs: int = 1) -> CheckJob:
        """Start a check in the background; ValueError when the rig is busy."""
        with self._lock:
            if any(j.rig == rig and j.state == "running" for j in self._jobs.values()):
                raise ValueError(f"rig {rig} is running another check")
            job = CheckJob(next(self._ids), case_id, rig, user, time.time())
            self._jobs[job.id] = job
        run_dir = self.run_root / f"case{case_id}-job{job.id}-{time.strftime('%Y%m%d-%H%M%S')}"
        env = dict(os.environ, STBLAB_RMA_URL=self.db_url, PYTHONUNBUFFERED="1")
        cmd = tied(self.command(case_id, rig, runs, run_dir))
        spawned = threading.Event()
        # The check's own thread starts the child and lives as long as it: the death signal is tied to
        # the forking thread, and the request thread calling start() ends when idle (AnyIO's pool).
        threading.Thread(target=self._run, args=(job, cmd, env, spawned), daemon=True, name=f"check-{job.id}").start()
        if not spawned.wait(SPAWN_TIMEOUT_S):
            self._end(job, None, f"the check did not start within {SPAWN_TIMEOUT_S:.0f} s")
        return job

    def _run(self, job: CheckJob, cmd: list[str], env: dict[str, str], spawned: threading.Event) -> None:
        """Start the check's process and follow it to its end (run in the check's own thread)."""
        try:
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                errors="replace",
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            self._end(job, None, f"could not start the check: {exc}")
            return
        finally:
            spawned.set()
        self._procs[job.id] = proc
        if job.state != "running":  # start() gave up waiting: the rig is free again, so no check runs on it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
        self._follow(job, proc)

    def _append(self, job: CheckJob, line: str) -> None:
        with job.changed:
            if len(job.lines) < MAX_LINES:
                job.lines.append(line)
            job.changed.notify_all()

    def _follow(self, job: CheckJob, proc: subprocess.Popen[str]) -> None:
        timer = threading.Timer(self.timeout, os.killpg, args=(proc.pid, 9))
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                self._append(job, line.rstrip("\n"))
            code = proc.wait()
        finally:
            timer.cancel()
        self._procs.pop(job.id, None)
        self._end(job, code, f"check stopped after {self.timeout:.0f} s: no verdict" if code == -9 else None)

    def _end(self, job: CheckJob, code: int | None, why: str | None) -> None:
        """Record how the check ended: ``code`` None when it never ran, -9 when it was stopped at its limit."""
        with job.changed:
            if job.state != "running":  # already ended (start() gave up waiting for the process)
                return
            job.exit_code = code
            job.ended = time.time()
            job.state = "timed_out" if code == -9 else "done" if code == 0 else "failed"
            if why is not None:
                job.lines.append(why)
            job.changed.notify_all()

    def stop_all(self) -> None:
        """Kill the checks still running (the app is shutting down: nothing outlives it)."""
        for proc in list(self._procs.values()):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)

    def get(self, job_id: int) -> CheckJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def for_case(self, case_id: int) -> list[CheckJob]:
        with self._lock:
            return [j for j in self._jobs.values() if j.case_id == case_id]
