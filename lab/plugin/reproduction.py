"""Reproduction: rerun a test that found a device fault (``--reproduce N``) and record k of n."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from lab.errors import DeviceFault, InfraError
from lab.plugin.filing import FaultContext, FiledFault, Reproduction
from lab.plugin.session import LabSession
from lab.plugin.state import LAB_KEY, RUN_KEY, LabState, TestRun, _one_line, _uses_lab
from lab.rig import Rig


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
        result = listener.allure_logger.get_test(listener._cache.get(item.nodeid))  # type: ignore[union-attr]
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
