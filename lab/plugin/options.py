"""The plugin's options, configuration and session-level hooks (header, summary, Allure environment)."""

from __future__ import annotations

import contextlib
import json
import os
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lab.errors import RigFileError
from lab.plugin.evidence import slug
from lab.plugin.outcomes import _SummaryFeed
from lab.plugin.session import EMULATE_MODES, worker_identity
from lab.plugin.state import LAB_KEY, LabState
from lab.plugin.summary import SessionSummary
from lab.plugin.timeouts import DEFAULT_TEST_TIMEOUT, TimeLimits, install_stack_dump, obey_interrupt
from lab.rig import Rig, load_rigs, select_rigs


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stblab", "stblab set-top-box lab")
    group.addoption(
        "--rigs",
        dest="stblab_rigs",
        metavar="FILE",
        default=None,
        help="rig file (rigs/*.yaml); turns the lab on (env STBLAB_RIGS)",
    )
    group.addoption(
        "--rig",
        dest="stblab_rig",
        metavar="NAME",
        default=None,
        help="rig name or selector such as model=STB-4K-X1 or feature=iptv",
    )
    group.addoption(
        "--emulate",
        dest="stblab_emulate",
        choices=EMULATE_MODES,
        default="auto",
        help="start `stblab emulate` for emulated rigs: auto (when not listening), always, never",
    )
    group.addoption(
        "--run-dir",
        dest="stblab_run_dir",
        metavar="DIR",
        default=None,
        help="where logs, evidence and results go (default reports/<UTC timestamp>/)",
    )
    group.addoption(
        "--rma-db",
        dest="stblab_rma_db",
        metavar="URL",
        default=None,
        help="RMA database URL or SQLite path (default: lab.rma's default)",
    )
    group.addoption(
        "--file-faults",
        dest="stblab_file_faults",
        action="store_true",
        default=True,
        help="file device faults into the RMA database (default)",
    )
    group.addoption(
        "--no-file-faults", dest="stblab_file_faults", action="store_false", help="do not file device faults"
    )
    group.addoption(
        "--reproduce",
        dest="stblab_reproduce",
        type=int,
        default=0,
        metavar="N",
        help="rerun a test that found a device fault up to N times (max 10; stop at 3 hits)",
    )
    group.addoption("--seed", dest="stblab_seed", type=int, default=None, help="seed for scenario randomness")
    group.addoption(
        "--boot-timeout",
        dest="stblab_boot_timeout",
        type=float,
        default=60.0,
        help="seconds from power-on to login prompt",
    )
    group.addoption(
        "--trust-new-ssh-key",
        dest="stblab_trust_new_ssh_key",
        action="store_true",
        default=False,
        help="accept and record an unknown SSH host key (never a changed one)",
    )
    group.addoption(
        "--test-timeout",
        dest="stblab_test_timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"time limit of one lab test (setup, call, teardown); over it the test is timed_out, an infra "
        f"outcome, with its stack as evidence (default {DEFAULT_TEST_TIMEOUT:g}; 0: none; "
        "@pytest.mark.stb_timeout(S) raises it for one test)",
    )
    group.addoption(
        "--events",
        dest="stblab_events",
        metavar="FILE",
        default=None,
        help="append one JSON line per test started and finished (the job runner's progress and results)",
    )
    group.addoption(
        "--left-out",
        dest="stblab_left_out",
        metavar="FILE",
        default=None,
        help="plan mode: leave out (deselect) tests the rig cannot run (model, features) and list them "
        "with the reason in FILE (JSON), so a skip at run time is never mistaken for a pass",
    )
    group.addoption(
        "--summary",
        dest="stblab_summary",
        metavar="FILE",
        default=None,
        help="where the session summary JSON goes (default <run-dir>/summary.json)",
    )


def _default_run_dir() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path("reports") / stamp


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "stb(model=None, features=()): the rig model/features a test needs; rigs lacking them skip the test"
    )
    config.addinivalue_line("markers", "stb_timeout(seconds): this test's time limit (raises --test-timeout)")
    rigs_file = config.getoption("stblab_rigs", None) or os.environ.get("STBLAB_RIGS")
    if not rigs_file:
        return
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput and "stblab_run_dir" in workerinput:
        run_dir = Path(workerinput["stblab_run_dir"])
        seed = int(workerinput["stblab_seed"])
    else:
        run_dir = Path(config.getoption("stblab_run_dir") or _default_run_dir()).absolute()
        seed = config.getoption("stblab_seed")
        seed = seed if seed is not None else random.SystemRandom().randrange(1, 2**31)
    selector = config.getoption("stblab_rig")
    if workerinput is None:
        # Validate before touching hardware: the file, the selector, workers vs rigs.
        try:
            selected = select_rigs(load_rigs(rigs_file), selector)
        except RigFileError as exc:
            raise pytest.UsageError(str(exc)) from exc
        workers = getattr(config.option, "numprocesses", None)
        if isinstance(workers, int) and workers > len(selected):
            raise pytest.UsageError(
                f"-n {workers} xdist workers but only {len(selected)} rig(s) selected "
                f"({', '.join(r.name for r in selected)}): each worker needs its own rig"
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        if hasattr(config.option, "xmlpath") and not config.option.xmlpath:
            config.option.xmlpath = str(run_dir / "junit.xml")
    if hasattr(config.option, "allure_report_dir") and not config.option.allure_report_dir:
        config.option.allure_report_dir = str(run_dir / "allure-results")
    summary = config.getoption("stblab_summary")
    reproduce = int(config.getoption("stblab_reproduce") or 0)
    if not 0 <= reproduce <= 10:
        raise pytest.UsageError(f"--reproduce {reproduce}: give 0 to 10 reruns (lab.rma's policy stops at 10)")
    state = config.stash[LAB_KEY] = LabState(
        rigs_file=Path(rigs_file),
        selector=selector,
        run_dir=run_dir,
        emulate=config.getoption("stblab_emulate"),
        seed=seed,
        file_faults=config.getoption("stblab_file_faults"),
        rma_db=config.getoption("stblab_rma_db") or os.environ.get("STBLAB_RMA_URL"),
        reproduce=reproduce,
        boot_timeout=config.getoption("stblab_boot_timeout"),
        trust_new_ssh_key=config.getoption("stblab_trust_new_ssh_key"),
        summary_path=Path(summary) if summary else run_dir / "summary.json",
        is_worker=workerinput is not None,
        worker=worker_identity(workerinput),
    )
    if workerinput is None:
        events = config.getoption("stblab_events")
        if events:
            state.summary.events = Path(events)
            state.summary.events.parent.mkdir(parents=True, exist_ok=True)
            install_stack_dump(state.summary.events.with_name("hung-stack.txt"))
            obey_interrupt()  # a runner reads --events and stops this run with SIGINT first
        config.pluginmanager.register(_SummaryFeed(state.summary), "stblab-summary")
    limit = config.getoption("stblab_test_timeout")
    if limit is None:  # the rig file's ``timeouts: {test: S}`` of the (first) selected rig, else the default
        with contextlib.suppress(RigFileError, IndexError):
            rig_limits = select_rigs(load_rigs(rigs_file), selector)[0].timeouts
            limit = rig_limits.test if rig_limits is not None else None
    limit = DEFAULT_TEST_TIMEOUT if limit is None else limit
    config.pluginmanager.register(TimeLimits(limit, lambda item: _stack_path(state, item)), "stblab-time-limits")


def _stack_path(state: LabState, item: pytest.Item) -> Path:
    """Where a timed-out test's stack goes: its evidence folder."""
    rig = state.session.rig.name if state.session is not None else (state.selector or "lab")
    return state.run_dir / rig / slug(item.nodeid) / "stack.txt"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: hand the controller's run folder and seed to each worker."""
    state = node.config.stash.get(LAB_KEY, None)
    if state is not None:
        node.workerinput["stblab_run_dir"] = str(state.run_dir)
        node.workerinput["stblab_seed"] = state.seed


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(LAB_KEY, None)
    if state is None:
        return None
    return [
        f"stblab: rigs {state.rigs_file} select={state.selector or 'all'} run-dir {state.run_dir} "
        f"seed {state.seed} emulate={state.emulate} file-faults={state.file_faults}"
    ]


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(LAB_KEY, None)
    if state is None:
        return
    if state.session is not None:
        state.session.close()
        state.session = None
    if state.filer is not None:
        with contextlib.suppress(Exception):
            state.filer.close()
    if not state.is_worker:
        state.summary.write(state.summary_path)
        _allure_environment(session.config, state.summary)


def _allure_environment(config: pytest.Config, summary: SessionSummary) -> None:
    """``environment.properties`` in the Allure results: each rig's model, firmware and serial."""
    folder = getattr(config.option, "allure_report_dir", None)
    if not folder or not Path(folder).is_dir() or not summary.rigs:
        return
    lines = [f"{rig}.{key}={value}" for rig, info in sorted(summary.rigs.items()) for key, value in info.items()]
    path = Path(folder) / "environment.properties"
    old = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    merged = sorted(set(old) | set(lines))  # the main job runs one session per rig into one folder
    path.write_text("\n".join(merged) + "\n", encoding="utf-8")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(LAB_KEY, None)
    if state is None or state.is_worker:
        return
    terminalreporter.section("stblab summary")
    for line in state.summary.lines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"run folder: {state.run_dir}")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``--left-out FILE``: deselect the tests the rig cannot run and write why to FILE."""
    state = config.stash.get(LAB_KEY, None)
    path = config.getoption("stblab_left_out", None)
    if state is None or not path:
        return
    rig = select_rigs(load_rigs(state.rigs_file), state.selector)[0]
    left: dict[str, str] = {}
    keep: list[pytest.Item] = []
    for item in items:
        why = unsupported(item, rig)
        if why:
            left[item.nodeid] = why
        else:
            keep.append(item)
    if left:
        config.hook.pytest_deselected(items=[i for i in items if i.nodeid in left])
        items[:] = keep
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(left, indent=2) + "\n", encoding="utf-8")


def unsupported(item: pytest.Item, rig: Rig) -> str | None:
    """Why ``rig`` cannot run ``item`` (its ``stb`` marker's model or features), or None."""
    marker = item.get_closest_marker("stb")
    if marker is None:
        return None
    model = marker.kwargs.get("model")
    if model and rig.model != model:
        return f"rig {rig.name} is a {rig.model}, this test needs model {model}"
    from lab.profile import ProfileError, profile_for_rig, unmet

    try:
        profile = profile_for_rig(rig)
    except ProfileError:
        profile = None
    reasons = unmet(rig, list(marker.kwargs.get("features", ())), profile)
    return f"rig {rig.name} lacks feature(s): {'; '.join(reasons)}" if reasons else None
