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
``--reproduce N``; ``--seed N``; ``--boot-timeout S``; ``--trust-new-ssh-key``;
``--test-timeout S`` (per lab test, default the rig file's ``timeouts: {test: S}`` or 300 s;
``@pytest.mark.stb_timeout(S)`` raises it for one test); ``--events FILE`` and ``--left-out FILE``
(used by the job runner, :mod:`lab.jobs`).

Fixtures: ``rig``, ``stb``, ``console``, ``shell`` (logged-in console), ``remote``, ``power``,
``capture``, ``run_dir``, ``seed``, ``record_measurement``, ``lab_session``.

Outcomes (stb-tester's red/yellow, LAVA's taxonomy): a :class:`~lab.errors.DeviceFault` (also one
raised while the box is being prepared, e.g. a panic during boot) or a plain assertion is a
*failure*; DeviceFaults are filed into the RMA database with their evidence (console excerpt,
deciding frame, clip, step log, network profile). An :class:`~lab.errors.InfraError` is an
*error* naming rig and instrument; it marks the rig unhealthy so later tests on it error at once,
and is never filed. A :class:`~lab.errors.TestError` or any other exception in a lab test is an
*error* of the scenario, and so is a scenario file that does not collect, a ``pytest.fail`` and any
exception nobody classified. A test over its limit is ``timed_out`` (infra, never filed) with its
stack. Every test gets one :class:`~lab.outcome.Outcome` (JUnit property ``stblab_outcome``, the
summary's ``tests``). Before a failure is filed, the rig's instruments are probed
(:func:`lab.device_health.probe_lab`); a lab that is not healthy makes it an infra error. Each carries a one-line
reason; a failed test leaves the box "dirty" so the next test power-cycles it, and a death string
the box printed while nobody waited on the console fails the test it happened in.
``--reproduce N`` reruns a filed fault's test (same seed, firmware, profile; on the same rig and
alternately on a free same-model twin with the same firmware) and records k of n with lab.rma's
policy; the reruns are measurements: JUnit, the summary and Allure keep the first pass's outcome.

With pytest-xdist each worker takes its own rig (worker ``gwN`` -> N-th selected rig); rig locks
keep two sessions off one rig.
"""

from __future__ import annotations

import importlib.util

from lab.plugin.fixtures import (
    capture,
    console,
    lab_session,
    power,
    record_measurement,
    remote,
    rig,
    run_dir,
    seed,
    shell,
    stb,
)
from lab.plugin.options import (
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_configure_node,
    pytest_report_header,
    pytest_sessionfinish,
    pytest_terminal_summary,
)
from lab.plugin.outcomes import pytest_runtest_call, pytest_runtest_makereport, pytest_runtest_setup
from lab.plugin.reproduction import pytest_runtest_protocol
from lab.plugin.state import LAB_KEY, RUN_KEY, LabState, TestRun

if importlib.util.find_spec("lab.network.pytest_fixtures") is not None:
    pytest_plugins = ["lab.network.pytest_fixtures"]

__all__ = [
    "LAB_KEY",
    "RUN_KEY",
    "LabState",
    "TestRun",
    "capture",
    "console",
    "lab_session",
    "power",
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_configure_node",
    "pytest_report_header",
    "pytest_runtest_call",
    "pytest_runtest_makereport",
    "pytest_runtest_protocol",
    "pytest_runtest_setup",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "record_measurement",
    "remote",
    "rig",
    "run_dir",
    "seed",
    "shell",
    "stb",
]
