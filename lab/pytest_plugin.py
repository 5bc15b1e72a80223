"""stblab's pytest plugin (registered through the ``pytest11`` entry point ``stblab``).

What it gives a scenario writer::

    @pytest.mark.stb(features=["ir", "hdmi"])
    def test_zap(shell, remote, capture, stb):
        remote.press("KEY_CHANNELUP")
        ...

Options: ``--rigs FILE`` (or env ``STBLAB_RIGS``) turns the lab on; ``--rig NAME|model=...``
selects rigs; ``--emulate auto|always|never`` (auto: start ``stblab emulate`` for an emulated rig
whose console port is not listening, for the session); ``--run-dir`` (default
``reports/<UTC timestamp>/``: console logs, evidence, ``junit.xml``, ``allure-results/``,
``summary.json``/``.md``); ``--rma-db URL``; ``--file-faults/--no-file-faults``;
``--reproduce N``; ``--seed N``; ``--boot-timeout S``; ``--trust-new-ssh-key``.

Fixtures: ``rig``, ``stb``, ``console``, ``shell`` (logged-in console), ``remote``, ``power``,
``capture``, ``run_dir``, ``seed``, ``record_measurement``, ``lab_session``.

Outcomes (stb-tester's red/yellow, LAVA's taxonomy): a :class:`~lab.errors.DeviceFault` (also one
raised while the box is being prepared, e.g. a panic during boot) or a plain assertion is a
*failure*; DeviceFaults are filed into the RMA database with their evidence (console excerpt,
deciding frame, clip, step log, network profile). An :class:`~lab.errors.InfraError` is an
*error* naming rig and instrument; it marks the rig unhealthy so later tests on it error at once,
and is never filed. A :class:`~lab.errors.TestError` or any other exception in a lab test is an
*error* of the scenario, and so is a scenario file that does not collect. Each carries a one-line
reason; a failed test leaves the box "dirty" so the next test power-cycles it, and a death string
the box printed while nobody waited on the console fails the test it happened in.
``--reproduce N`` reruns a filed fault's test (same seed, firmware, profile; on the same rig and
alternately on a free same-model twin with the same firmware) and records k of n with lab.rma's
policy; the reruns are measurements: JUnit, the summary and Allure keep the first pass's outcome.

With pytest-xdist each worker takes its own rig (worker ``gwN`` -> N-th selected rig); rig locks
keep two sessions off one rig.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lab.device_health import RigUnhealthy
from lab.errors import DeviceFault, InfraError, RigFileError, TestError
from lab.plugin.evidence import attach_to_allure, collect_evidence, slug
from lab.plugin.filing import FaultContext, FaultFiler, FiledFault, Reproduction, params_of
from lab.plugin.session import EMULATE_MODES, LabSession, worker_identity
from lab.plugin.summary import DEVICE_FAULT, INFRA_ERROR, TEST_ERROR, SessionSummary
from lab.rig import Rig, load_rigs, select_rigs
from lab.steps import STEPS, StepRecord

if importlib.util.find_spec("lab.network.pytest_fixtures") is not None:
    pytest_plugins = ["lab.network.pytest_fixtures"]

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


# -- options and configuration ---------------------------------------------------------------


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
        config.pluginmanager.register(_SummaryFeed(state.summary), "stblab-summary")


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


# -- fixtures --------------------------------------------------------------------------------


def _state(request: pytest.FixtureRequest) -> LabState:
    state = request.config.stash.get(LAB_KEY, None)
    if state is None:
        raise TestError("this test needs a rig: run pytest with --rigs FILE (e.g. --rigs rigs/emulated.yaml)")
    return state


@pytest.fixture(scope="session")
def run_dir(request: pytest.FixtureRequest) -> Path:
    """The run folder (console logs, evidence, JUnit, Allure, summary)."""
    return _state(request).run_dir


@pytest.fixture(scope="session")
def seed(request: pytest.FixtureRequest) -> int:
    """The session's seed (recorded in the report header; reruns use the same one)."""
    state = request.config.stash.get(LAB_KEY, None)
    return state.seed if state is not None else 0


@pytest.fixture
def record_measurement(request: pytest.FixtureRequest) -> Any:
    """``record_measurement(name, value)``: a figure of this test (boot time, zap time) that goes
    into the JUnit properties and the Allure result (works with every junit_family)."""

    def record(name: str, value: Any) -> None:
        request.node.user_properties.append((name, value))

    return record


@pytest.fixture(scope="session")
def lab_session(request: pytest.FixtureRequest) -> Iterator[LabSession]:
    """This process's :class:`~lab.plugin.session.LabSession` (rig, emulator, Stb, health)."""
    state = _state(request)
    yield state.lab()


@pytest.fixture
def rig(lab_session: LabSession) -> Rig:
    """The rig this test drives (from ``--rigs``/``--rig``; one per xdist worker; a same-model twin
    during reproduction reruns)."""
    return lab_session.rig


@pytest.fixture
def stb(lab_session: LabSession, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The box (:class:`lab.device.Stb`), console open; errors at once when the rig is unhealthy."""
    box = lab_session.stb()
    box.current_test = request.node.nodeid
    run = request.node.stash.get(RUN_KEY, None)
    if run is not None:
        try:
            run.console_mark = box.console.mark()
        except Exception:  # noqa: BLE001 - a mark is for evidence only
            run.console_mark = None
        if box._capture is not None:
            with contextlib.suppress(Exception):
                stats = box._capture.stats()
                run.capture_base = (int(stats.get("frames", 0)), int(stats.get("dropped", 0)))
    yield box
    box.current_test = None


@pytest.fixture
def console(stb: Any) -> Any:
    """The serial console of the box (whatever state the box is in)."""
    return stb.console


@pytest.fixture
def shell(stb: Any) -> Any:
    """The serial console with the box booted and logged in (``stb.to("shell")``)."""
    stb.to("shell")
    stb.collect_info()
    return stb.console


@pytest.fixture
def remote(stb: Any) -> Any:
    """The IR remote pointed at the box."""
    return stb.remote


@pytest.fixture
def power(stb: Any) -> Any:
    """The box's PDU outlet."""
    return stb.power


@pytest.fixture
def capture(stb: Any) -> Any:
    """The HDMI capture of the box (running for the rest of the session)."""
    return stb.capture


# -- markers and per-test bookkeeping ------------------------------------------------------


def _uses_lab(item: pytest.Item) -> bool:
    return bool(LAB_FIXTURES & set(getattr(item, "fixturenames", ())))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    state = item.config.stash.get(LAB_KEY, None)
    if state is None or not _uses_lab(item):
        return
    marker = item.get_closest_marker("stb")
    if marker is not None:
        rig = state.lab().rig
        model = marker.kwargs.get("model")
        features = list(marker.kwargs.get("features", ()))
        if model and rig.model != model:
            pytest.skip(f"rig {rig.name} is a {rig.model}, this test needs model {model}")
        missing = [f for f in features if f not in rig.features]
        if missing:
            pytest.skip(f"rig {rig.name} lacks feature(s): {', '.join(missing)}")
    run = item.stash.get(RUN_KEY, None)
    rerun = bool(run and run.rerun)
    run = TestRun(started=time.time(), rerun=rerun)
    rig_name = state.lab().rig.name

    def keep(rec: StepRecord) -> None:
        if rec.rig in (None, rig_name):
            run.steps.append(rec)

    run.unsubscribe = STEPS.subscribe(keep)
    item.stash[RUN_KEY] = run
    _allure_labels(rig=rig_name, model=state.lab().rig.model)
    if not any(k == "rig" for k, _ in item.user_properties):
        item.user_properties.append(("rig", rig_name))
        item.user_properties.append(("model", state.lab().rig.model))
        item.user_properties.append(("seed", state.seed))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A death string the box printed while nobody waited on the console fails *this* test (a
    DeviceFault from the call phase), not the next test's first console call."""
    result = yield
    state = item.config.stash.get(LAB_KEY, None)
    stb = state.session.stb_if_open if state is not None and state.session is not None else None
    if stb is not None and stb._console is not None:
        stb.console.check_death()
    return result


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


def _classify(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    if isinstance(exc, InfraError):
        return INFRA_ERROR
    if isinstance(exc, AssertionError):  # DeviceFault subclasses AssertionError
        return DEVICE_FAULT
    if isinstance(exc, pytest.skip.Exception | pytest.fail.Exception | pytest.xfail.Exception):
        return None
    return TEST_ERROR


def _add_prop(item: pytest.Item, report: pytest.TestReport, name: str, value: Any) -> None:
    item.user_properties.append((name, value))
    report.user_properties.append((name, value))


def _info_props(item: pytest.Item, state: LabState) -> None:
    stb = state.session.stb_if_open if state.session is not None else None
    if stb is None:
        return
    try:
        info = stb.collect_info()
    except Exception:  # noqa: BLE001 - properties must not change the outcome
        info = stb.info()
    have = {k for k, _ in item.user_properties}
    for key, prop in (
        ("firmware_version", "firmware_version"),
        ("serial", "device_serial"),
        ("firmware_build", "firmware_build"),
    ):
        if info.get(key) and prop not in have:
            item.user_properties.append((prop, info[key]))
            _allure_labels(**{prop: info[key]})
    capture = stb._capture
    run = item.stash.get(RUN_KEY, None)
    if capture is not None and run is not None and "video_dropped" not in have:
        with contextlib.suppress(Exception):  # frames this test saw, and the ones the capture lost
            stats = capture.stats()
            item.user_properties.append(("video_frames", int(stats.get("frames", 0)) - run.capture_base[0]))
            item.user_properties.append(("video_dropped", int(stats.get("dropped", 0)) - run.capture_base[1]))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    state = item.config.stash.get(LAB_KEY, None)
    active = state is not None and _uses_lab(item)
    if active and call.when == "teardown":
        _info_props(item, state)
    outcome = yield
    if not active:
        return
    report: pytest.TestReport = outcome.get_result()
    run = item.stash.get(RUN_KEY, None)
    if call.when == "teardown" and run is not None and run.unsubscribe is not None:
        run.unsubscribe()
        run.unsubscribe = None
    exc = call.excinfo.value if call.excinfo is not None else None
    kind = _classify(exc)
    if kind is None or report.passed or report.skipped:
        return
    assert state is not None and exc is not None
    lab = state.session  # None when the session could not even claim its rig
    if kind == INFRA_ERROR and lab is not None:
        assert isinstance(exc, InfraError)
        lab.health.mark_bad(exc.rig or lab.rig.name, exc, test=item.nodeid)
    if lab is not None and lab.stb_if_open is not None:
        lab.stb_if_open.mark_dirty()  # the next test power-cycles the box instead of inheriting its trouble
    if run is not None and run.rerun:
        if call.when in ("setup", "call") and isinstance(exc, DeviceFault):
            run.last_fault = exc  # a box that panics while booting (setup) reproduces its fault too
        return
    if kind == INFRA_ERROR:
        _add_prop(item, report, "instrument", getattr(exc, "instrument", None) or "")
    reason = _one_line(exc)
    symptom = getattr(exc, "symptom", None)
    if symptom and not reason.startswith(symptom):
        reason = f"{symptom}: {reason}"
    _add_prop(item, report, "stblab_outcome", kind)
    _add_prop(item, report, "stblab_reason", reason)
    if kind != DEVICE_FAULT and report.when == "call":
        # An instrument (or the scenario) failed, not the box: report it as an error, not a failure.
        report.when = "setup"  # type: ignore[misc]
    elif kind == DEVICE_FAULT and report.when == "setup" and isinstance(exc, DeviceFault):
        # The box misbehaved while being prepared (did not boot, crashed): a failure, and filed.
        report.when = "call"  # type: ignore[misc]
    if lab is None:
        _add_prop(item, report, "rig", getattr(exc, "rig", None) or "")
        return
    if call.when == "teardown" or (call.when == "setup" and kind == TEST_ERROR):
        return
    ev = None
    stb = lab.stb_if_open
    if stb is not None and run is not None and not isinstance(exc, RigUnhealthy):  # refused: nothing happened
        funcargs = getattr(item, "funcargs", None) or {}
        profile = None
        net_profile = funcargs.get("net_profile")
        if net_profile is not None and hasattr(net_profile, "as_record"):
            profile = net_profile.as_record()
        pcap = getattr(getattr(funcargs.get("net"), "pcap", None), "path", None)
        ev = collect_evidence(
            stb,
            test_dir=state.run_dir / lab.rig.name / slug(item.nodeid),
            error=exc,
            console_mark=run.console_mark,
            steps=list(run.steps),  # a snapshot: evidence collection's own steps are not the test's
            profile=profile,
            pcap=pcap,
        )
        attach_to_allure(ev)
        report.sections.append(("stblab evidence", "\n".join(f"{k}: {v}" for k, v in ev.files.items())))
    if kind == DEVICE_FAULT and isinstance(exc, DeviceFault) and run is not None:
        _file(item, report, state, lab, run, exc, ev.files if ev else {})


def _file(
    item: pytest.Item,
    report: pytest.TestReport,
    state: LabState,
    lab: LabSession,
    run: TestRun,
    exc: DeviceFault,
    artifacts: dict[str, Path],
) -> None:
    """Keep the fault's context (``--reproduce`` reruns from it) and file it unless ``--no-file-faults``."""
    stb = lab.stb_if_open
    info = stb.info() if stb is not None else {"rig": lab.rig.name, "model": lab.rig.model}
    console_text = ""
    if stb is not None and stb._console is not None:
        try:
            console_text = str(stb.console.since(run.console_mark)) if run.console_mark is not None else ""
        except Exception:  # noqa: BLE001
            console_text = ""
    funcargs = getattr(item, "funcargs", None) or {}
    net = funcargs.get("net_profile")
    ctx = FaultContext(
        nodeid=item.nodeid,
        scenario=item.nodeid.split("[", 1)[0],
        fault=exc,
        rig=lab.rig.name,
        model=lab.rig.model,
        device_serial=info.get("serial"),
        firmware_version=info.get("firmware_version"),
        firmware_build=info.get("firmware_build"),
        seed=state.seed,
        params=params_of(item),
        network_profile=net.as_record() if net is not None and hasattr(net, "as_record") else None,
        started=run.started,
        ended=time.time(),
        console_text=console_text,
        artifacts=dict(artifacts),
    )
    run.fault_ctx = ctx
    if not state.file_faults:
        return
    try:
        filed = state.fault_filer().file(ctx)
    except Exception as err:  # noqa: BLE001 - a filing problem must not turn a fault into a pass
        _add_prop(item, report, "filing_error", _one_line(err))
        report.sections.append(("stblab filing", f"not filed: {err}"))
        return
    run.filed = filed
    _add_prop(item, report, "fault_id", filed.fault_id)
    _add_prop(item, report, "fault_new", filed.is_new)
    report.sections.append(
        ("stblab filing", f"{'new' if filed.is_new else 'known'} fault #{filed.fault_id} ({filed.status})")
    )


# -- reproduction: rerun a test that found a device fault -----------------------------------


def _rerun_once(item: pytest.Item, nextitem: pytest.Item | None, symptom: str | None) -> bool:
    """One silent rerun; True when it found the same fault (same symptom) again."""
    from _pytest.runner import runtestprotocol

    item.stash[RUN_KEY] = TestRun(started=time.time(), rerun=True)
    runtestprotocol(item, nextitem=nextitem, log=False)
    again = item.stash[RUN_KEY]
    return again.last_fault is not None and (again.last_fault.symptom or "") == (symptom or "")


def _twin_matches(lab: LabSession, twin: Rig, firmware: str) -> str | None:
    """Why the twin cannot be used (None when it runs the same firmware and answers)."""
    try:
        with lab.borrowed(twin) as box:
            box.to("shell")
            have = box.firmware_version()
    except (InfraError, DeviceFault) as exc:
        return f"{twin.name} unusable: {_one_line(exc)}"
    if have != firmware:
        return f"{twin.name} runs firmware {have}, not {firmware}"
    return None


@contextlib.contextmanager
def _allure_keeps_the_first_pass(item: pytest.Item) -> Iterator[None]:
    """Reruns are measurements: allure-pytest would let the last rerun overwrite the test's result
    (a fault whose last rerun passed showed as passed), so its status, details and labels are put
    back to the first pass's once the reruns are done. No-op without ``--alluredir``."""
    result = None
    listener = item.config.pluginmanager.get_plugin("allure_listener")
    with contextlib.suppress(Exception):  # allure-pytest's internals: decoration, never an outcome
        result = listener.allure_logger.get_test(listener._cache.get(item.nodeid))
    saved = None
    if result is not None:
        saved = (result.status, result.statusDetails, result.stop, list(result.labels), list(result.links))
    try:
        yield
    finally:
        if result is not None and saved is not None:
            result.status, result.statusDetails, result.stop, result.labels, result.links = saved


def _reproduce(
    item: pytest.Item,
    nextitem: pytest.Item | None,
    state: LabState,
    first: FaultContext,
    filed: FiledFault | None,
    call_rep: pytest.TestReport,
) -> str:
    """Rerun with the same seed, firmware and profile on the same rig and, when one is free and
    runs the same firmware, alternately on a twin of the model; record k of n (lab.rma policy)."""
    lab = state.lab()
    repro = Reproduction(state.reproduce)
    per_rig: dict[str, list[int]] = {}
    notes: list[str] = []
    twin: Rig | None = None
    tried: set[str] = set()
    firmware = first.firmware_version
    if state.reproduce >= 2 and not firmware:
        notes.append("no twin: the failing rig's firmware version is unknown, so no twin can match it")
    while state.reproduce >= 2 and firmware and (candidate := lab.claim_twin(tried)) is not None:
        tried.add(candidate.name)
        why = _twin_matches(lab, candidate, firmware)
        if why is None:
            twin = candidate
            break
        notes.append(f"twin skipped: {why}")
        lab.release(candidate)
    try:
        while not repro.done and not item.session.shouldstop:
            on_twin = twin is not None and repro.runs % 2 == 1
            if on_twin and twin is not None:
                with lab.borrowed(twin):
                    hit = _rerun_once(item, nextitem, first.fault.symptom)
                where = twin.name
            else:
                hit = _rerun_once(item, nextitem, first.fault.symptom)
                where = first.rig
            repro.record(hit)
            counts = per_rig.setdefault(where, [0, 0])
            counts[0] += int(hit)
            counts[1] += 1
            if lab.health.status(first.rig) == "bad":
                notes.append(f"stopped: rig {first.rig} went bad")
                break
            if twin is not None and lab.health.status(twin.name) == "bad":
                notes.append(f"twin {twin.name} went bad")
                lab.release(twin)
                twin = None
    finally:
        if twin is not None:
            lab.release(twin)
    detail = ", ".join(f"{rig} {k}/{n}" for rig, (k, n) in per_rig.items())
    text = repro.as_text() + (f" [{detail}]" if detail else "")
    call_rep.user_properties.append(("reproduction", text))
    call_rep.sections.append(
        ("stblab reproduction", f"reproduced {text} with seed {first.seed}" + "".join(f"\n{n}" for n in notes))
    )
    item.user_properties.append(("reproduction", text))
    if filed is not None:
        try:
            state.fault_filer().record_reproduction(filed, repro, first)
        except Exception as err:  # noqa: BLE001 - the measurement is still in the report
            call_rep.sections.append(("stblab reproduction", f"not recorded: {err}"))
    return text


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    state = item.config.stash.get(LAB_KEY, None)
    if state is None or state.reproduce <= 0 or not _uses_lab(item):
        return None
    from _pytest.runner import runtestprotocol

    # Each pass (the first and every rerun) is a full setup/call/teardown with the real next item;
    # session-scoped lab state lives on the config, so a rerun gets the same rig and box back.
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    reports = runtestprotocol(item, nextitem=nextitem, log=False)
    run = item.stash.get(RUN_KEY, None)
    call_rep = next((r for r in reports if r.when in ("call", "setup") and r.failed), None)
    if run is not None and run.fault_ctx is not None and call_rep is not None:
        with _allure_keeps_the_first_pass(item):
            text = _reproduce(item, nextitem, state, run.fault_ctx, run.filed, call_rep)
        for rep in reports:
            if rep.when == "teardown":
                rep.user_properties.append(("reproduction", text))  # JUnit reads the teardown report
    for rep in reports:
        item.ihook.pytest_runtest_logreport(report=rep)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


class _SummaryFeed:
    """Feeds every logged report into the session summary (registered per config, on the controller)."""

    def __init__(self, summary: SessionSummary) -> None:
        self.summary = summary

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.summary.add_report(report)

    @pytest.hookimpl(trylast=True)
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        # A scenario file that does not import stops the session before any test ran: without
        # this the summary said "ok" and the main job exited 0 on a suite that never ran.
        if report.failed:
            text = str(report.longrepr or "").strip().splitlines()
            reason = next((line for line in reversed(text) if line.startswith("E ")), text[-1] if text else "")
            reason = reason.removeprefix("E ").strip()
            self.summary.add_collect_error(report.nodeid, f"collection failed: {reason}"[:300])
