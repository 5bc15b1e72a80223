"""What the framework's own tests share: one fast boot, one bounded wait, one way to start a lab.

Import it from any test module (``tests/`` is on ``sys.path`` through ``tests/conftest.py``)::

    from support import FAST_BOOT, eventually, start_lab

    def test_x(tmp_path):
        with start_lab(tmp_path, ("stb-a",)) as lab:
            rig = lab.rigs["stb-a"]
            ...
            eventually(lambda: keys.seen() == ["KEY_OK"], timeout=3, what="the key press")

Rule of the house: no ``time.sleep`` to wait for something to happen. Wait for the thing with
:func:`eventually` (it returns as soon as it holds, and fails with what was last seen). A sleep
stays only where a test asserts that nothing happens within a window, with a comment saying so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from lab.emulator.launcher import EmulatedLab
from lab.emulator.testing import write_rig_file

T = TypeVar("T")

#: Boot timings for emulated boxes in tests: about 2.5 s from power-on to the login prompt.
FAST_BOOT: dict[str, Any] = {
    "bootdelay": 1,
    "countdown_step": 0.5,
    "kernel_seconds": 0.3,
    "init_seconds": 0.2,
    "kmsg_interval": 0,
}


def eventually(
    probe: Callable[[], T],
    timeout: float = 5.0,
    *,
    interval: float = 0.02,
    what: str | None = None,
) -> T:
    """Call ``probe`` until it returns something truthy, and return that; AssertionError after ``timeout`` s.

    An exception from ``probe`` counts as "not yet" until the deadline, then it is raised (so an
    assertion inside ``probe`` reports its own message). ``what`` names the awaited thing in the
    failure message, with the last value the probe returned.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            last = probe()
            error = None
            if last:
                return last  # type: ignore[return-value]
        except AssertionError as exc:
            error = exc
        if time.monotonic() >= deadline:
            if error is not None:
                raise error
            label = what or getattr(probe, "__name__", "condition")
            raise AssertionError(f"{label} did not happen within {timeout:g} s (last seen: {last!r})")
        time.sleep(interval)


#: The name older tests use.
wait_for = eventually


def start_lab(
    directory: Path,
    rigs: Sequence[str] = ("stb-a",),
    *,
    boot: dict[str, Any] | None = None,
    ready_timeout: float = 60.0,
    factory_reset: bool = False,
    **rig_options: Any,
) -> EmulatedLab:
    """An :class:`EmulatedLab` (not started: use it in ``with``) for a fresh rig file in ``directory``.

    ``boot`` defaults to :data:`FAST_BOOT`; ``rig_options`` go to
    :func:`lab.emulator.testing.write_rig_file` (firmware, defects, extra, ...).
    """
    rig_file = write_rig_file(directory, tuple(rigs), boot=FAST_BOOT if boot is None else boot, **rig_options)
    return EmulatedLab(rig_file, ready_timeout=ready_timeout, factory_reset=factory_reset)


def udp_bound(port: int, timeout: float = 10.0) -> None:
    """Wait until the capture has bound UDP ``port``: datagrams sent before that are lost, and with them
    the stream's first key frame (the capture would start at the next one, seconds in)."""
    suffix = f":{port:04X}"

    def bound() -> bool:
        for table in (Path("/proc/net/udp"), Path("/proc/net/udp6")):
            rows = table.read_text().splitlines()[1:] if table.exists() else []
            if any(len(row.split()) > 1 and row.split()[1].endswith(suffix) for row in rows):
                return True
        return False

    eventually(bound, timeout, what=f"the capture binding UDP port {port}")


__all__ = ["FAST_BOOT", "eventually", "start_lab", "udp_bound", "wait_for"]
