"""Preconditions: setup steps whose failure is not the fault the test is about.

After stb-tester's ``as_precondition``: a test that zaps to check subtitles first has to tune a
channel; when the channel does not tune, that is not a subtitle fault, and a reproduction run
must not count it as a hit. Inside ``with precondition("channel tuned"):`` a DeviceFault (a
video check that failed, a death string on the console) or a plain AssertionError becomes
:class:`PreconditionFailed`, a :class:`~lab.errors.TestError`: reported as an error, never filed
as a fault. The original is kept as ``__cause__`` and ``cause``, and a video check's deciding
result as ``result`` (the plugin saves its frame as for any video check).

InfraError passes through unchanged (a lost instrument is the lab's problem wherever it happens).

Example::

    with precondition("live TV on channel 5"):
        remote.press("KEY_5")
        tv.expect_banner(5)
    tv.expect_subtitles()          # a failure here is the fault under test
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lab.errors import DeviceFault, TestError


class PreconditionFailed(TestError):
    """A precondition of the test did not hold; ``cause`` is what failed, ``result`` a video check's evidence."""

    def __init__(self, what: str, cause: BaseException) -> None:
        self.what = what
        self.cause = cause
        self.result: Any = getattr(cause, "result", None)
        self.rig: str | None = getattr(cause, "rig", None)
        self.symptom: str | None = getattr(cause, "symptom", None)
        first = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        super().__init__(f"precondition {what!r} failed: {first}")


@contextmanager
def precondition(what: str) -> Iterator[None]:
    """Run the block as a precondition named ``what`` (see the module docstring)."""
    try:
        yield
    except (DeviceFault, AssertionError) as exc:
        raise PreconditionFailed(what, exc) from exc
