"""Logged steps: every public driver and device action is a step with its duration.

Learned from labgrid: a step names the rig, the instrument, the action and its arguments, and is
logged when it starts and when it ends (with the time it took and how it ended). The pytest
plugin collects steps per test for the report.

Example::

    class PowerSwitch:
        @step("power")
        def on(self) -> None: ...

    # log: "stb-a power.on() ... done in 0.041 s"
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

log = logging.getLogger("stblab.steps")

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class StepRecord:
    """One finished step."""

    rig: str | None
    instrument: str
    action: str
    args: str
    started: float
    duration: float
    outcome: str  # "ok" or the exception class name
    depth: int = 0
    detail: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        who = f"{self.rig} " if self.rig else ""
        return (
            f"{'  ' * self.depth}{who}{self.instrument}.{self.action}({self.args}) "
            f"{self.outcome} in {self.duration:.3f} s"
        )


class StepLog:
    """Collects steps; listeners (the pytest plugin, a report) subscribe to finished steps."""

    def __init__(self) -> None:
        self.records: list[StepRecord] = []
        self._listeners: list[Callable[[StepRecord], None]] = []
        self._lock = threading.Lock()
        self._depth = threading.local()

    def subscribe(self, fn: Callable[[StepRecord], None]) -> Callable[[], None]:
        """Call ``fn`` for each finished step; returns a function that unsubscribes."""
        with self._lock:
            self._listeners.append(fn)

        def undo() -> None:
            with self._lock:
                if fn in self._listeners:
                    self._listeners.remove(fn)

        return undo

    def emit(self, record: StepRecord) -> None:
        with self._lock:
            self.records.append(record)
            del self.records[:-10000]
            listeners = list(self._listeners)
        for fn in listeners:
            fn(record)

    def depth(self) -> int:
        return getattr(self._depth, "value", 0)

    def set_depth(self, value: int) -> None:
        self._depth.value = value


STEPS = StepLog()

# Parameter names whose values are secrets ("key" alone is not: IR keys and key file paths are not).
_SECRET_NAME = re.compile(r"pass(word|phrase|wd)?$|secret|token|credential|private_key|api_key", re.I)


def _secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def _fmt_args(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """Arguments as written, with any whose parameter name looks secret shown as ``***``
    (positional ones too: ``login("root", "hunter2")`` logs ``'root', ***``)."""
    try:
        names = list(inspect.signature(fn).parameters)[1:]  # without self
    except (TypeError, ValueError):
        names = []
    parts = []
    for i, a in enumerate(args):
        name = names[i] if i < len(names) else ""
        parts.append("***" if name and _secret(name) else _short(a))
    for k, v in kwargs.items():
        parts.append(f"{k}=***" if _secret(k) else f"{k}={_short(v)}")
    return ", ".join(parts)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def step(instrument: str, *, hide_args: bool = False) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a method of an object with a ``rig_name`` attribute so each call is a logged step.

    Arguments whose names look secret (password, passphrase, token, secret) are logged as ``***``;
    ``hide_args=True`` hides all of them.
    """

    def deco(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            obj = args[0] if args else None
            rig = getattr(obj, "rig_name", None)
            shown = "***" if hide_args else _fmt_args(fn, tuple(args[1:]), dict(kwargs))
            depth = STEPS.depth()
            log.info("%s%s %s.%s(%s) ...", "  " * depth, rig or "", instrument, fn.__name__, shown)
            STEPS.set_depth(depth + 1)
            t0 = time.monotonic()
            started = time.time()
            outcome = "ok"
            try:
                return fn(*args, **kwargs)
            except BaseException as exc:
                outcome = type(exc).__name__
                raise
            finally:
                STEPS.set_depth(depth)
                rec = StepRecord(rig, instrument, fn.__name__, shown, started, time.monotonic() - t0, outcome, depth)
                log.info("%s", rec.line())
                STEPS.emit(rec)

        return wrapper

    return deco
