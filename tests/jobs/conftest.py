"""Emulated rigs for the job runner's tests, and a way to count the processes a job left behind."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from support import FAST_BOOT

from lab.emulator.testing import EmulatedLab, rig_entry

LEAK = {"2.3.0": [{"kind": "memory_leak", "kb_per_zap": 150000}]}


def write_rigs(directory: Path) -> Path:
    """``good`` (2.0.0) and ``bad`` (2.3.0, leaking memory on every zap)."""
    directory.mkdir(parents=True, exist_ok=True)
    rigs = [
        rig_entry(directory, "good", firmware="2.0.0", boot=FAST_BOOT),
        rig_entry(directory, "bad", firmware="2.3.0", defects=LEAK, boot=FAST_BOOT),
    ]
    path = directory / "rigs.yaml"
    path.write_text(yaml.safe_dump({"rigs": rigs}, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lab_rigs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The rig file, with both emulators running for the module."""
    path = write_rigs(tmp_path_factory.mktemp("lab"))
    with EmulatedLab(path, rigs=["good", "bad"]):
        yield path


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line mentions ``text`` (e.g. a run folder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def wait_until(condition: Callable[[], bool], timeout: float, period: float = 0.2) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass (a bounded wait, not a sleep)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while time.monotonic() < deadline:
        if condition():
            return True
        pause.wait(period)
    return condition()
