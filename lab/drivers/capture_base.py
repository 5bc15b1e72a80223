"""What the capture's halves share, declared once so each half type-checks on its own.

:class:`~lab.drivers.capture.Capture` sets these attributes in its ``__init__``; the grabber
(:mod:`lab.drivers.capture_grabber`) and the frame numbering (:mod:`lab.drivers.capture_numbering`)
read and write them. Also the capture's input state (:class:`Signal`) and its timeout error.
"""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING

import numpy as np

from lab.drivers.ring import FrameRing
from lab.errors import StblabError

if TYPE_CHECKING:
    from lab.drivers.capture_numbering import _Grab


class Signal(str):
    """The capture's input state; a string (``"signal"``, ``"no-signal"``, ``"lost"``) that is
    truthy only while there is a signal, so ``if capture.signal:`` reads as it should."""

    def __bool__(self) -> bool:
        return self == "signal"


SIGNAL = Signal("signal")
NO_SIGNAL = Signal("no-signal")
LOST = Signal("lost")


class CaptureTimeout(StblabError, TimeoutError):
    """No new frame arrived in time (the capture itself is reachable: no signal from the box)."""


class CaptureBase:
    """Attributes of one capture (see the module docstring)."""

    url: str | int
    rig_name: str | None
    no_signal_after: float
    fps_hint: float | None
    open_timeout: float
    read_timeout: float
    lost_after: float
    max_lag: float
    jpeg_quality: int
    ring: FrameRing
    kind: str
    frames_received: int
    dropped: int
    consumer_dropped: int
    opens: int
    open_failures: int
    ended: bool
    raw_jpeg: bool
    time_source: str
    last_error: str
    _cond: threading.Condition
    _stop: threading.Event
    _last_frame_at: float
    _unreachable_since: float | None
    _settled: bool
    _decoded: collections.OrderedDict[int, np.ndarray]
    _decoded_lock: threading.Lock
    _pending: list[_Grab]
    _pend_cond: threading.Condition
    _multipart: bool | None

    if TYPE_CHECKING:

        def _remember(self, seq: int, image: np.ndarray) -> None: ...
