"""The plugin's per-process state: the lab session, per-test bookkeeping, and the keys they live under.

Nothing here is global: :class:`LabState` sits in the pytest config's stash, :class:`TestRun` in
each item's stash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lab.errors import DeviceFault, TestError
from lab.plugin.filing import FaultContext, FaultFiler, FiledFault
from lab.plugin.session import LabSession
from lab.plugin.summary import SessionSummary
from lab.steps import StepRecord

LAB_FIXTURES = frozenset({"rig", "stb", "console", "shell", "remote", "power", "capture", "lab_session"})


@dataclass
class TestRun:
    """Per-test bookkeeping (console mark, steps, start time, reruns)."""

    __test__ = False

    started: float
    console_mark: Any = None
    steps: list[StepRecord] = field(default_factory=list)
    unsubscribe: Any = None
    rerun: bool = False
    filed: FiledFault | None = None
    fault_ctx: FaultContext | None = None
    last_fault: DeviceFault | None = None
    capture_base: tuple[int, int] = (0, 0)  # capture (frames, dropped) when the test started


@dataclass
class LabState:
    """The plugin's state for one pytest process (stored on the config, never global)."""

    rigs_file: Path
    selector: str | None
    run_dir: Path
    emulate: str
    seed: int
    file_faults: bool
    rma_db: str | None
    reproduce: int
    boot_timeout: float
    trust_new_ssh_key: bool
    summary_path: Path
    is_worker: bool
    worker: tuple[str | None, int | None] = (None, None)  # xdist worker id and count
    session: LabSession | None = None
    filer: FaultFiler | None = None
    summary: SessionSummary = field(default_factory=SessionSummary)

    def lab(self) -> LabSession:
        """This process's lab session, created (rig claimed) on first use."""
        if self.session is None:
            wid, count = self.worker
            self.session = LabSession(
                rigs_file=self.rigs_file,
                selector=self.selector,
                run_dir=self.run_dir,
                emulate=self.emulate,
                worker_id=wid,
                worker_count=count,
                boot_timeout=self.boot_timeout,
                trust_new_ssh_key=self.trust_new_ssh_key,
            )
        return self.session

    def fault_filer(self) -> FaultFiler:
        """The session's RMA filer, opened on the first device fault."""
        if self.filer is None:
            self.filer = FaultFiler(self.rma_db, artifact_root=None)
        return self.filer


LAB_KEY = pytest.StashKey[LabState]()
RUN_KEY = pytest.StashKey[TestRun]()


def _uses_lab(item: pytest.Item) -> bool:
    return bool(LAB_FIXTURES & set(getattr(item, "fixturenames", ())))


def _state(request: pytest.FixtureRequest) -> LabState:
    state = request.config.stash.get(LAB_KEY, None)
    if state is None:
        raise TestError("this test needs a rig: run pytest with --rigs FILE (e.g. --rigs rigs/emulated.yaml)")
    return state


def _allure_labels(**labels: str) -> None:
    """Label the current Allure test (filterable in the Allure UI); no-op without --alluredir."""
    try:
        import allure

        for name, value in labels.items():
            if value:
                allure.dynamic.label(name, str(value))
    except Exception:  # noqa: BLE001 - labels are decoration, never an outcome
        pass


def _one_line(exc: BaseException) -> str:
    msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(msg).strip().splitlines()[0][:300] if str(msg).strip() else type(exc).__name__


def _add_prop(item: pytest.Item, report: pytest.TestReport, name: str, value: Any) -> None:
    item.user_properties.append((name, value))
    report.user_properties.append((name, value))
