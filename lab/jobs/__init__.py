"""One job runner for ``stblab lab``, ``stblab firmware gate`` and ``stblab warranty check``.

A job = rigs x selection x firmware x limits (:class:`JobSpec`); :func:`run_job` validates and
plans it (bad input before any rig is touched), runs one pytest process per rig in its own
process group under per-test, per-rig and per-job limits, and returns a :class:`JobResult`: per
rig, per test, the :class:`~lab.outcome.Outcome`, duration, evidence and filed faults, plus what
was planned and did not run. The three commands are policies over it (what to run, how to decide).

The names below are loaded when first used (PEP 562): ``from lab.jobs.rigsource import ...`` or
``from lab.jobs import JobInputError`` does not import the runner, which imports pytest and the
plugin (~0.3 s), so a command answers bad input before paying for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.lazy import lazy_names

if TYPE_CHECKING:
    from lab.jobs.plan import RigPlan, make_plan
    from lab.jobs.report import lines, write_all
    from lab.jobs.result import JobResult, RigResult, TestResult
    from lab.jobs.runner import kill_group, run_job
    from lab.jobs.spec import JobInputError, JobSpec

#: public name -> the submodule defining it
_HOME = {
    "JobInputError": "spec",
    "JobResult": "result",
    "JobSpec": "spec",
    "RigPlan": "plan",
    "RigResult": "result",
    "TestResult": "result",
    "kill_group": "runner",
    "lines": "report",
    "make_plan": "plan",
    "run_job": "runner",
    "write_all": "report",
}

__all__ = [
    "JobInputError",
    "JobResult",
    "JobSpec",
    "RigPlan",
    "RigResult",
    "TestResult",
    "kill_group",
    "lines",
    "make_plan",
    "run_job",
    "write_all",
]


__getattr__, __dir__ = lazy_names(__name__, _HOME)
