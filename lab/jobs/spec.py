"""What a job is: rigs x selection x firmware x options, validated before any rig is touched.

The firmware choice is already in the rig file the job gets (``stblab lab`` derives one with each
emulated rig's version; the gate flashes first and passes build properties); the job runs the
selection on every rig, one pytest process each, under three layers of time limits.

Example::

    spec = JobSpec(rig_file=Path("reports/x/rigs.yaml"), rigs=["stb-a", "stb-b"],
                   suite=["scenarios", "-k", "zap"], run_dir=Path("reports/x"), test_timeout=120)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class JobInputError(Exception):
    """Bad input found before anything ran (exit code 4): names what is wrong."""


@dataclass
class JobSpec:
    """One job: which rigs run which selection, where results go, and the limits."""

    rig_file: Path
    rigs: list[str]
    suite: list[str]  # pytest arguments: paths, -k/-m expressions, --ignore ...
    run_dir: Path
    rma_db: str | None = None
    file_faults: bool = True
    reproduce: int = 0
    test_timeout: float | None = None  # per test (the plugin's limit); None: the plugin's default
    rig_timeout: float | None = None  # per rig (its whole pytest process)
    job_timeout: float | None = None  # the whole job
    kill_grace: float = 5.0  # SIGTERM to a rig's process group, then SIGKILL after this long
    extra_args: list[str] = field(default_factory=list)  # more pytest arguments (plugins, properties)
    env: dict[str, str] = field(default_factory=dict)
    label: str = "stblab"  # JUnit suite name prefix
    emulate: list[str] = field(default_factory=list)  # emulated rigs the job starts (and stops)
    name: str = ""  # subfolder of run_dir per repetition (warranty: run1, run2, ...)

    def validate(self) -> None:
        """Raise :class:`JobInputError` for options that cannot work (before anything starts)."""
        if not self.rigs:
            raise JobInputError("no rig selected")
        if len(set(self.rigs)) != len(self.rigs):
            raise JobInputError(f"a rig is named twice: {', '.join(self.rigs)}")
        for what, value in (("--test-timeout", self.test_timeout), ("rig time limit", self.rig_timeout),
                            ("--job-timeout", self.job_timeout)):  # fmt: skip
            if value is not None and value < 0:
                raise JobInputError(f"{what} {value:g}: give a number of seconds >= 0")
        if not 0 <= self.reproduce <= 10:
            raise JobInputError(f"--reproduce {self.reproduce}: give 0 to 10 reruns")
        if not self.rig_file.exists():
            raise JobInputError(f"rig file {self.rig_file} does not exist")

    def rig_dir(self, rig: str) -> Path:
        """Where one rig's logs and results go."""
        return self.run_dir / self.name / rig if self.name else self.run_dir / rig


__all__ = ["JobInputError", "JobSpec"]
