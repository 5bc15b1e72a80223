"""Outcomes of lab tests: marker checks and per-test bookkeeping, classification of what a test
raised (device fault, infra error, test error), evidence and fault filing, and the summary feed."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.device_health import RigUnhealthy, probe_lab
from lab.errors import DeviceFault, InfraError
from lab.plugin.evidence import Evidence, attach_to_allure, collect_evidence, slug
from lab.plugin.filing import FaultContext, params_of
from lab.plugin.session import LabSession
from lab.plugin.state import LAB_KEY, RUN_KEY, LabState, TestRun, _add_prop, _allure_labels, _one_line, _uses_lab
from lab.plugin.summary import DEVICE_FAULT, INFRA_ERROR, TEST_ERROR, TIMED_OUT, SessionSummary
from lab.plugin.timeouts import TestTimedOut
from lab.steps import STEPS, StepRecord


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
        from lab.profile import ProfileError, profile_for_rig, unmet

        try:
            profile = profile_for_rig(rig)
        except ProfileError:
            profile = None
        reasons = unmet(rig, features, profile)
        if reasons:
            pytest.skip(f"rig {rig.name} lacks feature(s): {'; '.join(reasons)}")
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
    _check_held(state, rig_name)


def _check_held(state: LabState, rig: str) -> None:
    """A rig whose labgrid place was lost (kicked, coordinator restarted, exporter gone) is not ours:
    its next tests end as InfraError "lock lost"/"exporter gone", never filed. No-op for rig files
    that did not come from labgrid (no status file); no labgrid import."""
    from lab.labgrid.source import STATUS_ENV, STATUS_SUFFIX, check_held

    status = os.environ.get(STATUS_ENV)  # set by the command holding the places (its rig file may be derived)
    for rig_file in [str(state.rigs_file), *([status.removesuffix(STATUS_SUFFIX)] if status else [])]:
        check_held(rig_file, rig)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A death string the box printed while nobody waited on the console fails *this* test (a
    DeviceFault from the call phase), not the next test's first console call."""
    result = yield
    state = item.config.stash.get(LAB_KEY, None)
    stb = state.session.stb_if_open if state is not None and state.session is not None else None
    console = stb.console_if_open if stb is not None else None
    if console is not None:
        console.check_death()
    return result


def _classify(exc: BaseException | None) -> str | None:
    """The outcome of what a test raised: None for nothing (or a skip/xfail), else an Outcome value.

    A test over its limit (ours, or pytest-timeout's ``Timeout`` failure) is ``timed_out``; a
    scenario's own ``pytest.fail`` and any exception nobody classified are ``test_error``: a device
    fault needs the box to have been shown to misbehave (a DeviceFault or a failed assertion)."""
    if exc is None:
        return None
    if isinstance(exc, TestTimedOut):
        return TIMED_OUT
    if isinstance(exc, InfraError):
        return INFRA_ERROR
    if isinstance(exc, pytest.skip.Exception | pytest.xfail.Exception):
        return None
    if isinstance(exc, pytest.fail.Exception):
        return TIMED_OUT if str(exc).startswith("Timeout") else TEST_ERROR
    if isinstance(exc, AssertionError):  # DeviceFault subclasses AssertionError
        return DEVICE_FAULT
    return TEST_ERROR


def _info_props(item: pytest.Item, state: LabState) -> None:
    stb = state.session.stb_if_open if state.session is not None else None
    if stb is None:
        return
    try:
        stb.collect_info()
        props = stb.report_properties()  # each value read, or "unknown (reason)": never silently absent
    except Exception as exc:  # noqa: BLE001 - properties must not change the outcome
        props = {k: f"unknown ({exc})" for k in ("firmware_version", "device_serial", "firmware_build")}
    have = {k for k, _ in item.user_properties}
    for prop, value in props.items():
        if prop not in have:
            item.user_properties.append((prop, value))
            _allure_labels(**{prop: value})
    capture = stb.capture_if_running
    run = item.stash.get(RUN_KEY, None)
    if capture is not None and run is not None and "video_dropped" not in have:
        with contextlib.suppress(Exception):  # frames this test saw, and the ones the capture lost
            stats = capture.stats()
            item.user_properties.append(("video_frames", int(stats.get("frames", 0)) - run.capture_base[0]))
            item.user_properties.append(("video_dropped", int(stats.get("dropped", 0)) - run.capture_base[1]))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Give each failed phase its outcome, in named steps: classify what was raised, check the lab
    before blaming the box, keep the rig's health, label the report, collect evidence, file the fault."""
    state = item.config.stash.get(LAB_KEY, None)
    active = state is not None and _uses_lab(item)
    if state is not None and active and call.when == "teardown":
        _info_props(item, state)
    outcome: Any = yield
    report: pytest.TestReport = outcome.get_result()
    if state is None:
        return
    if not active:  # a test of the lab session that uses no box: outcome only
        _label_boxless(item, call, report)
        return
    run = item.stash.get(RUN_KEY, None)
    if call.when == "teardown" and run is not None and run.unsubscribe is not None:
        run.unsubscribe()
        run.unsubscribe = None
    exc = call.excinfo.value if call.excinfo is not None else None
    kind = _classify(exc)
    if kind is None or exc is None or report.passed or report.skipped:
        return
    lab = state.session  # None when the session could not even claim its rig
    kind, exc = _blame_lab_first(kind, exc, lab, run)
    _keep_health(item, kind, exc, lab)
    if run is not None and run.rerun:
        if call.when in ("setup", "call") and isinstance(exc, DeviceFault):
            run.last_fault = exc  # a box that panics while booting (setup) reproduces its fault too
        return
    _label(item, report, kind, exc)
    if lab is None:
        _add_prop(item, report, "rig", getattr(exc, "rig", None) or "")
        return
    if call.when == "teardown" or (call.when == "setup" and kind == TEST_ERROR):
        if kind == TIMED_OUT and getattr(exc, "stack", None):
            _add_prop(item, report, "evidence", str(Path(exc.stack).parent))  # type: ignore[attr-defined]
        return
    ev = _evidence(item, report, state, lab, run, exc)
    if kind == DEVICE_FAULT and isinstance(exc, DeviceFault) and run is not None:
        _file(item, report, state, lab, run, exc, ev.files if ev else {})


def _label_boxless(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    """The outcome of a failed test that uses no box: its kind and reason, an error unless a device fault."""
    exc = call.excinfo.value if call.excinfo is not None else None
    kind = _classify(exc)
    if kind is not None and exc is not None and report.failed:
        _add_prop(item, report, "stblab_outcome", kind)
        _add_prop(item, report, "stblab_reason", _one_line(exc))
        if kind != DEVICE_FAULT and report.when == "call":
            report.when = "setup"


def _blame_lab_first(
    kind: str, exc: BaseException, lab: LabSession | None, run: TestRun | None
) -> tuple[str, BaseException]:
    """A device fault stays one only when the lab's own instruments are healthy; else an infra error."""
    if kind != DEVICE_FAULT or lab is None or lab.stb_if_open is None or (run is not None and run.rerun):
        return kind, exc
    # The lab is checked before the box is blamed: a console silence or a missed banner with a
    # frozen emulator, a dead PDU or a stalled capture is the lab's failure, never filed. (A test
    # that never opened the box has no instrument to blame.)
    lost = probe_lab(lab.rig, lab.stb_if_open)
    if lost is None:
        return kind, exc
    return INFRA_ERROR, InfraError(
        f"{lost.message} (the test's failure, {_one_line(exc)!r}, is not blamed on the box)",
        rig=lost.rig,
        instrument=lost.instrument,
    )


def _keep_health(item: pytest.Item, kind: str, exc: BaseException, lab: LabSession | None) -> None:
    """An infra error marks the rig bad; any failure leaves the box dirty (the next test power-cycles it)."""
    if lab is None:
        return
    if kind == INFRA_ERROR:
        assert isinstance(exc, InfraError)
        lab.health.mark_bad(exc.rig or lab.rig.name, exc, test=item.nodeid)
    if lab.stb_if_open is not None:
        lab.stb_if_open.mark_dirty()  # the next test power-cycles the box instead of inheriting its trouble


def _label(item: pytest.Item, report: pytest.TestReport, kind: str, exc: BaseException) -> None:
    """The report's outcome properties, and failure vs error as the outcome says (not as the phase says)."""
    if kind == INFRA_ERROR:
        _add_prop(item, report, "instrument", getattr(exc, "instrument", None) or "")
    reason = _one_line(exc)
    symptom = getattr(exc, "symptom", None)
    if symptom and not reason.startswith(symptom):
        reason = f"{symptom}: {reason}"
    _add_prop(item, report, "stblab_outcome", kind)
    _add_prop(item, report, "stblab_reason", reason)
    _allure_labels(stblab_outcome=kind)  # the same Outcome name in Allure as in JUnit and the database
    if kind != DEVICE_FAULT and report.when == "call":
        # An instrument (or the scenario) failed, not the box: report it as an error, not a failure.
        report.when = "setup"
    elif kind == DEVICE_FAULT and report.when == "setup" and isinstance(exc, DeviceFault):
        # The box misbehaved while being prepared (did not boot, crashed): a failure, and filed.
        report.when = "call"


def _evidence(
    item: pytest.Item,
    report: pytest.TestReport,
    state: LabState,
    lab: LabSession,
    run: TestRun | None,
    exc: BaseException,
) -> Evidence | None:
    """Collect the failure's evidence from the open box (none when the box was never opened or the
    rig was refused as unhealthy: nothing happened) and point the report at it."""
    stb = lab.stb_if_open
    if stb is None or run is None or isinstance(exc, RigUnhealthy):
        return None
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
    stack = getattr(exc, "stack", None)
    if isinstance(exc, TestTimedOut) and stack is not None and Path(stack).exists():
        ev.files["stack"] = Path(stack)  # where it hung, every thread
    attach_to_allure(ev)
    _add_prop(item, report, "evidence", str(ev.dir))
    report.sections.append(("stblab evidence", "\n".join(f"{k}: {v}" for k, v in ev.files.items())))
    return ev


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
    console = stb.console_if_open if stb is not None else None
    if console is not None:
        try:
            console_text = str(console.since(run.console_mark)) if run.console_mark is not None else ""
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


class _SummaryFeed:
    """Feeds every logged report into the session summary (registered per config, on the controller)."""

    def __init__(self, summary: SessionSummary) -> None:
        self.summary = summary

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.summary.add_report(report)

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.summary.test_started(nodeid)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        self.summary.test_finished(nodeid)

    @pytest.hookimpl(trylast=True)
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        # A scenario file that does not import stops the session before any test ran: without
        # this the summary said "ok" and the main job exited 0 on a suite that never ran.
        if report.failed:
            text = str(report.longrepr or "").strip().splitlines()
            reason = next((line for line in reversed(text) if line.startswith("E ")), text[-1] if text else "")
            reason = reason.removeprefix("E ").strip()
            self.summary.add_collect_error(report.nodeid, f"collection failed: {reason}"[:300])
