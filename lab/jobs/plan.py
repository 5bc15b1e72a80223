"""The plan of a job: which tests each rig will run, found by collecting before anything runs.

Each rig's selection is collected (``pytest --collect-only`` with the lab plugin, in parallel) with
``--left-out``: tests the rig cannot run (model, features) are left out here and listed, so a
skip at run time is never counted as a pass. A path that does not exist or a selection that
collects nothing is bad input (:class:`~lab.jobs.spec.JobInputError`), before any rig is touched.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lab.jobs.spec import JobInputError, JobSpec

REPO = Path(__file__).resolve().parents[2]
COLLECT_TIMEOUT = 180.0


@dataclass
class RigPlan:
    """The tests one rig will run, and the ones left out with why."""

    rig: str
    tests: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    collect_errors: list[str] = field(default_factory=list)


def base_args(spec: JobSpec, rig: str, run_dir: Path) -> list[str]:
    """pytest arguments every run of ``rig`` gets (plan and run alike)."""
    args = [*spec.suite, "-p", "no:cacheprovider", "-p", "no:timeout"]
    args += ["--rigs", str(spec.rig_file), "--rig", rig, "--emulate", "never", "--run-dir", str(run_dir)]
    args += ["--left-out", str(run_dir / rig / "left-out.json")]
    return args + list(spec.extra_args)


def _nodeids(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if "::" in line and not line.startswith(("ERROR", "  "))]


def _problem(output: str) -> str:
    """The first line pytest explains a refusal with."""
    for line in output.splitlines():
        if line.startswith(("ERROR:", "ERROR ", "E ")) or "error:" in line:
            return line.removeprefix("ERROR:").strip()
    lines = [x for x in output.splitlines() if x.strip()]
    return lines[-1] if lines else "pytest refused the selection"


def plan_rig(spec: JobSpec, rig: str) -> RigPlan:
    """Collect ``spec.suite`` for ``rig``; raises JobInputError for bad input."""
    plan_dir = spec.run_dir / "plan"
    cmd = [sys.executable, "-m", "pytest", "--collect-only", "-q", *base_args(spec, rig, plan_dir)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=COLLECT_TIMEOUT,
                              env=None if not spec.env else {**_env(), **spec.env})  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise JobInputError(f"collecting the suite for rig {rig} took over {COLLECT_TIMEOUT:g} s") from exc
    out = proc.stdout + proc.stderr
    plan = RigPlan(rig, tests=_nodeids(proc.stdout))
    left = plan_dir / rig / "left-out.json"
    if left.exists():
        plan.left_out = json.loads(left.read_text(encoding="utf-8"))
    if proc.returncode == 4:  # usage error: e.g. "file or directory not found: scenarios/nope.py"
        raise JobInputError(f"the suite {' '.join(spec.suite)!r} cannot run: {_problem(out)}")
    if proc.returncode == 2:  # collection errors: the run reports them as test errors
        plan.collect_errors = [x for x in out.splitlines() if x.startswith("ERROR ")]
    elif proc.returncode not in (0, 5):
        raise JobInputError(f"collecting the suite for rig {rig} failed (pytest exit {proc.returncode}): "
                            f"{_problem(out)}")  # fmt: skip
    return plan


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def make_plan(spec: JobSpec) -> dict[str, RigPlan]:
    """Every rig's plan (collected in parallel). A selection with no test on any rig is bad input."""
    with ThreadPoolExecutor(max_workers=max(1, len(spec.rigs))) as pool:
        plans = dict(zip(spec.rigs, pool.map(lambda r: plan_rig(spec, r), spec.rigs), strict=True))
    if not any(p.tests or p.collect_errors for p in plans.values()):
        left = sum(len(p.left_out) for p in plans.values())
        more = f" ({left} left out: the rigs lack what they need)" if left else ""
        raise JobInputError(f"the suite selects no tests: {' '.join(spec.suite)!r}{more}")
    return plans


__all__ = ["RigPlan", "base_args", "make_plan", "plan_rig"]
