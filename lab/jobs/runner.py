"""The one job runner: validate, plan, start one pytest process per rig, watch the limits, collect.

Each rig's pytest runs in its own process group (``start_new_session``) and appends one JSON
line per test to ``<rig>/events.jsonl``; the runner reads those lines for the progress display
and for the results, so a rig that is killed keeps the results of the tests it finished.

Time limits, after LAVA's layered timeouts:

* per test: the plugin's ``--test-timeout`` (a ``SIGALRM`` in the test: ``timed_out`` with the
  stack); should a test stay stuck past its limit plus a margin (a C call that ignores signals),
  the runner asks for a stack dump (``SIGUSR1``) and kills the rig's process group;
* per rig: ``rig_timeout`` for the rig's whole pytest process;
* per job: ``job_timeout`` for everything.

A rig killed for a limit has its running test ``timed_out`` (stack in ``hung-stack.txt``) and its
remaining tests ``not_run``; the other rigs go on. SIGINT/SIGTERM to the job stops every rig the
same way, writes the partial result and returns it (the policy exits ``incomplete``). Every
process group the job started is gone when :func:`run_job` returns.

Example::

    result = run_job(JobSpec(rig_file=rigs, rigs=["stb-a"], suite=["scenarios"], run_dir=run))
    raise SystemExit(result.exit_code())
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lab.jobs.plan import REPO, RigPlan, base_args, make_plan
from lab.jobs.progress import Progress, RigProgress
from lab.jobs.result import JobResult, RigResult, TestResult
from lab.jobs.spec import JobSpec
from lab.lifeline import tied
from lab.outcome import Outcome
from lab.plugin.timeouts import DEFAULT_TEST_TIMEOUT, TEARDOWN_GRACE

log = logging.getLogger(__name__)

POLL = 0.2
HUNG_MARGIN = TEARDOWN_GRACE + 30.0  # past the plugin's own limit, a test is stuck where signals do not reach


@dataclass
class _Running:
    """One rig's pytest process while the job runs."""

    name: str
    plan: RigPlan
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    events: Path
    started: float
    progress: RigProgress
    pos: int = 0
    current: str | None = None
    current_since: float = 0.0
    results: dict[str, TestResult] = field(default_factory=dict)
    collect_errors: list[TestResult] = field(default_factory=list)
    killed: str | None = None
    killed_for_time: bool = False

    def read_events(self) -> list[dict[str, Any]]:
        """New complete lines of the events file since the last read."""
        try:
            with self.events.open("rb") as fh:
                fh.seek(self.pos)
                data = fh.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self.pos += end
        out = []
        for line in data[:end].splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out


class _Stop:
    """Set by SIGINT/SIGTERM (or the job limit): every rig is stopped, the partial result kept."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.event = threading.Event()

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.event.set()


@contextlib.contextmanager
def _signals(stop: _Stop) -> Iterator[None]:
    """SIGINT/SIGTERM stop the job (main thread only; elsewhere nothing is installed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, lambda signum, _f: stop.set(signal.Signals(signum).name))
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _pytest_cmd(spec: JobSpec, rig: str) -> list[str]:
    rig_dir = spec.rig_dir(rig)
    run_dir = rig_dir.parent
    cmd = [sys.executable, "-m", "pytest", *base_args(spec, rig, run_dir), "-q", "-rfE"]
    cmd += ["--junitxml", str(rig_dir / "junit.xml"), "--alluredir", str(run_dir / "allure-results")]
    cmd += ["--summary", str(rig_dir / "summary.json"), "--events", str(rig_dir / "events.jsonl")]
    cmd += ["--reproduce", str(spec.reproduce), "-o", f"junit_suite_name={spec.label}-{rig}"]
    if spec.test_timeout is not None:
        cmd += ["--test-timeout", f"{spec.test_timeout:g}"]
    if spec.rma_db:
        cmd += ["--rma-db", spec.rma_db]
    if not spec.file_faults:
        cmd += ["--no-file-faults"]
    return cmd


def kill_group(proc: subprocess.Popen[bytes], grace: float, *, stack: bool = True) -> None:
    """Stop a rig's pytest and everything in its process group: a stack dump (``SIGUSR1``), ``SIGINT``
    (pytest writes its JUnit and summary), ``SIGTERM`` to the group, ``SIGKILL`` after ``grace``."""
    pgid = proc.pid  # start_new_session: the group is the process's own
    if proc.poll() is None:
        if stack:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGUSR1)
        for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 2.0)):
            with contextlib.suppress(ProcessLookupError):
                if sig is signal.SIGINT:
                    os.kill(proc.pid, sig)
                else:
                    os.killpg(pgid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait)
                break
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)  # whatever pytest left behind in its group
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _on_event(run: _Running, ev: dict[str, Any], progress: Progress) -> None:
    kind = ev.get("event")
    if kind == "start":
        run.current, run.current_since = str(ev["nodeid"]), time.monotonic()
        run.progress.current = run.current
        progress.changed(run.name)
    elif kind == "result":
        res = TestResult.from_event(ev)
        run.results[res.nodeid] = res
        run.current = None
        run.progress.add(res.outcome)
        progress.changed(run.name, finished_test=True)
    elif kind == "collect_error":
        run.collect_errors.append(TestResult(str(ev["nodeid"]), Outcome.TEST_ERROR, reason=str(ev.get("reason"))))


def _finish(spec: JobSpec, run: _Running) -> RigResult:
    """The rig's result once its process ended (killed or not)."""
    rig_dir = spec.rig_dir(run.name)
    res = RigResult(run.name, planned=list(run.plan.tests), left_out=dict(run.plan.left_out),
                    log=str(rig_dir / "pytest.log"), junit=str(rig_dir / "junit.xml"))  # fmt: skip
    res.exit_status = run.proc.returncode
    res.ended = f"killed: {run.killed}" if run.killed else "finished"
    res.tests = list(run.results.values()) + run.collect_errors
    if run.current is not None and run.current not in run.results:
        stack = rig_dir / "hung-stack.txt"
        outcome = Outcome.TIMED_OUT if run.killed_for_time else Outcome.NOT_RUN
        res.tests.append(TestResult(run.current, outcome, duration=time.monotonic() - run.current_since,
                                    reason=f"{run.killed or 'pytest ended'} while this test ran",
                                    instrument="pytest" if outcome is Outcome.TIMED_OUT else None,
                                    evidence=[str(stack)] if stack.exists() else []))  # fmt: skip
    code = run.proc.returncode
    if not run.killed and code not in (0, 1) and not run.results and not run.collect_errors:
        res.tests.append(TestResult(f"pytest on {run.name}", Outcome.INFRA_ERROR, instrument="pytest",
                                    reason=f"pytest exited {code} without running a test (see {res.log})"))  # fmt: skip
    why = run.killed or f"pytest ended before it (exit {code})"
    res.fill_not_run(f"not run: {why}")
    summary = rig_dir / "summary.json"
    if summary.exists():
        with contextlib.suppress(ValueError, KeyError, OSError):
            res.info = dict(json.loads(summary.read_text(encoding="utf-8")).get("rigs", {}).get(run.name, {}))
    return res


def run_job(
    spec: JobSpec,
    *,
    echo: Callable[[str], object] = print,
    plans: dict[str, RigPlan] | None = None,
    live: bool = True,
) -> JobResult:
    """Run ``spec`` and return its :class:`JobResult` (raises JobInputError for bad input, before any
    rig is touched). ``live``: rich progress on a terminal; otherwise a line per finished test."""
    t0 = time.monotonic()
    spec.validate()
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    plans = plans if plans is not None else make_plan(spec)
    result = JobResult(spec.run_dir)
    stop = _Stop()
    runs: list[_Running] = []
    lab: Any = None
    with _signals(stop), contextlib.ExitStack() as stack:
        if spec.emulate:
            from lab.emulator.testing import EmulatedLab, EmulatorFailed

            echo(f"  starting the emulated lab ({', '.join(spec.emulate)}) ...")
            try:
                lab = EmulatedLab(spec.rig_file, rigs=list(spec.emulate)).start()
                stack.callback(lab.stop)
            except (EmulatorFailed, OSError, TimeoutError) as exc:
                result.problems.append(TestResult("emulated lab", Outcome.INFRA_ERROR, instrument="emulator",
                                                  reason=f"the emulated lab did not start: {exc}"))  # fmt: skip
        env = {**os.environ, **spec.env, "PYTHONUNBUFFERED": "1"}
        if not result.problems and stop.reason is None:
            for name in spec.rigs:
                rig_dir = spec.rig_dir(name)
                rig_dir.mkdir(parents=True, exist_ok=True)
                (rig_dir / "events.jsonl").unlink(missing_ok=True)
                log = stack.enter_context(open(rig_dir / "pytest.log", "wb"))  # noqa: SIM115
                proc = subprocess.Popen(tied(_pytest_cmd(spec, name)), stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                        env=env, start_new_session=True)  # fmt: skip
                now = time.monotonic()
                runs.append(_Running(name, plans[name], proc, log, rig_dir / "events.jsonl", now,
                                     RigProgress(name, len(plans[name].tests), now)))  # fmt: skip
                echo(f"  {name}: running {len(plans[name].tests)} test(s), log {rig_dir / 'pytest.log'}")
        progress = Progress([r.progress for r in runs], echo=None if live else echo)
        limits = _rig_limits(spec)
        try:
            with progress:
                _watch(spec, runs, stop, progress, limits, t0)
        finally:
            for run in runs:  # on every way out, nothing the job started outlives it
                kill_group(run.proc, spec.kill_grace, stack=run.proc.poll() is None and not run.killed)
                for ev in run.read_events():
                    _on_event(run, ev, progress)
    result.rigs = [_finish(spec, run) for run in runs]
    started = {r.rig for r in result.rigs}
    for name in spec.rigs:  # rigs that never started (the emulated lab failed, or stopped first)
        if name not in started:
            rr = RigResult(name, planned=list(plans[name].tests), left_out=dict(plans[name].left_out))
            why = result.problems[0].reason if result.problems else (stop.reason or "not started")
            rr.ended = f"not started: {why}"
            rr.fill_not_run(f"not run: {why}")
            result.rigs.append(rr)
    result.stopped = stop.reason
    result.elapsed = time.monotonic() - t0
    _separate_allure_rigs(spec.run_dir / "allure-results")
    return result


def _separate_allure_rigs(results: Path) -> None:
    """Each rig's result of a test its own Allure test (a rig parameter and a per-rig history id):
    without it Allure shows the rigs of one test as retries and hides all but the last."""
    if not results.is_dir():
        return
    from lab.allure_report import separate_rigs

    try:
        separate_rigs(results)
    except ValueError as exc:  # a half-written result of a killed rig: the rest still counts
        log.warning("allure results not separated by rig: %s", exc)


def _rig_limits(spec: JobSpec) -> dict[str, tuple[float | None, float | None]]:
    """(test limit, rig limit) per rig: the spec's, else the rig file's ``timeouts:``, else the defaults."""
    from lab.rig import load_rigs

    rigs = load_rigs(spec.rig_file)
    out: dict[str, tuple[float | None, float | None]] = {}
    for name in spec.rigs:
        own = rigs[name].timeouts if name in rigs else None
        test = spec.test_timeout if spec.test_timeout is not None else (own.test if own else None)
        rig = spec.rig_timeout if spec.rig_timeout is not None else (own.rig if own else None)
        out[name] = ((DEFAULT_TEST_TIMEOUT if test is None else test) or None, rig or None)
    return out


def _watch(spec: JobSpec, runs: list[_Running], stop: _Stop, progress: Progress,
           limits: dict[str, tuple[float | None, float | None]], t0: float) -> None:  # fmt: skip
    """Follow the rigs until all ended, enforcing the three limits and the stop flag."""
    while any(r.proc.poll() is None for r in runs):
        now = time.monotonic()
        if spec.job_timeout and now - t0 > spec.job_timeout and stop.reason is None:
            stop.set(f"job time limit {spec.job_timeout:g} s")
        for run in runs:
            for ev in run.read_events():
                _on_event(run, ev, progress)
            if run.proc.poll() is not None or run.killed:
                continue
            why = None
            test_limit, rig_limit = limits[run.name]
            if stop.reason is not None:
                why = f"job stopped ({stop.reason})"
                run.killed_for_time = stop.reason.startswith("job time limit")
            elif rig_limit and now - run.started > rig_limit:
                why, run.killed_for_time = f"rig time limit {rig_limit:g} s", True
            elif test_limit and run.current is not None and now - run.current_since > test_limit + HUNG_MARGIN:
                why = f"test stuck {now - run.current_since:.0f} s, past its {test_limit:g} s limit"
                run.killed_for_time = True
            if why is not None:
                run.killed = why
                run.progress.state = f"killed: {why}"
                progress.changed(run.name)
                threading.Thread(target=kill_group, args=(run.proc, spec.kill_grace), daemon=True).start()
        progress.tick()
        time.sleep(POLL)  # a poll period; SIGINT/SIGTERM set the stop flag and are seen on the next round


__all__ = ["kill_group", "run_job"]
