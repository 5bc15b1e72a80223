"""Per-test time limits (LAVA's innermost layer): ``--test-timeout SECONDS`` and ``@pytest.mark.stb_timeout(S)``.

A lab test over its limit ends as ``timed_out`` -- an infra outcome, never filed against the box --
with the stack where it hung (``stack.txt`` in the test's evidence folder, every thread, from
:mod:`faulthandler`) and the console tail collected like any other failure's evidence.

How: a ``SIGALRM`` timer armed around the test's whole protocol (setup, call, teardown) raises
:class:`TestTimedOut` in the test's (main) thread. A test stuck where Python never gets control
back (a C call that ignores signals) is the job runner's to end: it sends ``SIGUSR1`` (which
:func:`install_stack_dump` turns into a stack dump) and then kills the rig's process group.

The limit comes from ``--test-timeout``, else the rig file's ``timeouts: {test: S}``, else
:data:`DEFAULT_TEST_TIMEOUT`; a marker raises it for one long test::

    @pytest.mark.stb_timeout(900)
    def test_overnight_soak(shell): ...
"""

from __future__ import annotations

import contextlib
import faulthandler
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import IO, Any

import pytest

DEFAULT_TEST_TIMEOUT = 300.0
TEARDOWN_GRACE = 15.0  # after a timeout, the teardown gets this long before it is cut short too


class TestTimedOut(BaseException):
    """A test went over its time limit (BaseException: a scenario's ``except Exception`` cannot eat it)."""

    __test__ = False

    def __init__(self, message: str, stack: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.stack = stack


def limit_for(item: pytest.Item, default: float | None) -> float | None:
    """The item's limit in seconds: its ``stb_timeout`` marker, else ``default`` (None: no limit)."""
    marker = item.get_closest_marker("stb_timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return default


def _where(frame: FrameType | None) -> str:
    """``file:line in function`` of the innermost frame of scenario or lab code."""
    while frame is not None:
        code = frame.f_code
        if "/_pytest/" not in code.co_filename and "pluggy" not in code.co_filename:
            return f"{Path(code.co_filename).name}:{frame.f_lineno} in {code.co_name}"
        frame = frame.f_back
    return "unknown place"


class TestTimer:
    """Arms ``SIGALRM`` for one test; on expiry writes the stack to ``stack_path`` and raises."""

    __test__ = False

    def __init__(self, nodeid: str, limit: float, stack_path: Callable[[], Path]) -> None:
        self.nodeid = nodeid
        self.limit = limit
        self.stack_path = stack_path
        self.fired = False
        self.in_phase = False  # inside setup/call/teardown, where pytest records what is raised
        self.pending: TestTimedOut | None = None
        self._old: Any = None

    def enter_phase(self) -> None:
        """A phase starts: a timeout that expired between phases is raised here."""
        self.in_phase = True
        if self.pending is not None:
            exc, self.pending = self.pending, None
            raise exc

    def leave_phase(self) -> None:
        """A phase ended."""
        self.in_phase = False

    def _expired(self, signum: int, frame: FrameType | None) -> None:
        path = self.stack_path()
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8") as fh:
                fh.write(f"# {self.nodeid}: over its {self.limit:g} s limit; stacks of every thread:\n")
                fh.flush()
                faulthandler.dump_traceback(fh, all_threads=True)
        first = not self.fired
        self.fired = True
        signal.setitimer(signal.ITIMER_REAL, TEARDOWN_GRACE)  # a hung teardown is cut short as well
        what = "over its" if first else "still hung after"
        exc = TestTimedOut(f"test {what} {self.limit:g} s time limit; hung at {_where(frame)}", path)
        if not self.in_phase:  # between phases (pytest's own code): raise when the next phase starts
            self.pending = exc
            return
        raise exc

    def __enter__(self) -> TestTimer:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGALRM, self._expired)
            signal.setitimer(signal.ITIMER_REAL, self.limit)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old)


_STACK_FILES: list[IO[str]] = []


def install_stack_dump(path: Path) -> None:
    """``SIGUSR1`` dumps every thread's stack into ``path`` (the job runner asks before it kills)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = path.open("a", encoding="utf-8")
    _STACK_FILES.append(fh)  # faulthandler keeps the fd: the file must stay open for the process
    faulthandler.register(signal.SIGUSR1, file=fh, all_threads=True)


def obey_interrupt() -> None:
    """Take ``SIGINT`` as Ctrl-C again (``KeyboardInterrupt``) when this process inherited it ignored.

    A shell starting a job in the background (``cmd &``, cron, a CI step) makes it ignore SIGINT,
    and children inherit that. A runner stopping a rig's pytest sends SIGINT first so pytest ends
    the test and writes its JUnit and summary; ignored, that stop would wait out its grace and
    come down to SIGTERM with nothing written. Main thread only (where Python handles signals).
    """
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


class TimeLimits:
    """The pytest plugin object that puts every test under its limit (registered by the lab plugin)."""

    def __init__(self, default: float | None, stack_path: Callable[[pytest.Item], Path]) -> None:
        self.default = default
        self.stack_path = stack_path
        self.timer: TestTimer | None = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[Any]:
        limit = limit_for(item, self.default)
        if not limit or limit <= 0:
            return (yield)
        with TestTimer(item.nodeid, limit, lambda: self.stack_path(item)) as timer:
            self.timer = timer
            try:
                return (yield)
            finally:
                self.timer = None

    def _phase(self) -> Iterator[None]:
        timer = self.timer
        if timer is None:
            return (yield)
        timer.enter_phase()
        try:
            return (yield)
        finally:
            timer.leave_phase()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Iterator[None]:
        return (yield from self._phase())

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        return (yield from self._phase())

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
        return (yield from self._phase())


__all__ = ["DEFAULT_TEST_TIMEOUT", "TestTimedOut", "TestTimer", "TimeLimits", "install_stack_dump", "limit_for"]
