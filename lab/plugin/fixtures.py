"""The plugin's fixtures: ``rig``, ``stb``, ``console``, ``shell``, ``remote``, ``power``, ``capture``,
``run_dir``, ``seed``, ``record_measurement``, ``lab_session``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.plugin.session import LabSession
from lab.plugin.state import LAB_KEY, RUN_KEY, _state
from lab.rig import Rig


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
        capture = box.capture_if_running
        if capture is not None:
            with contextlib.suppress(Exception):
                stats = capture.stats()
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
