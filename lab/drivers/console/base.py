"""The state the console's halves share, declared once so each half type-checks on its own.

:class:`SerialConsole` sets these in its ``__init__``; the mixins (port, reader, expect, shell,
bootloader) read and write them. Only annotations live here, and the cross-half methods are
declared for the type checker only: at run time every name comes from the class that defines it.
"""

from __future__ import annotations

import codecs
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import serial

from lab.drivers.console.ansi import AnsiFilter
from lab.drivers.console.spill import Spill
from lab.drivers.console_death import DeathEvent, DeathWatch
from lab.drivers.console_log import ConsoleLog
from lab.errors import InfraError

if TYPE_CHECKING:
    from lab.drivers.console.expect import ExpectMatch

    Pattern = str | bytes | re.Pattern[str] | re.Pattern[bytes]


class ConsoleBase:
    """Attributes of one console (see the module docstring)."""

    url: str
    rig_name: str | None
    baudrate: int
    char_delay: float
    prompt: str
    encoding: str
    bootloader_prompt: str
    newline: str
    reconnect_delays: tuple[float, ...]
    max_buffer: int
    login_user: str
    login_prompt: str
    password_prompt: str
    login_refused: str
    autoboot: str
    kernel_started: str
    _login_password: str | None
    log: ConsoleLog
    _watch: DeathWatch
    _cond: threading.Condition
    _write_lock: threading.Lock
    _port: serial.SerialBase | None
    _state: str
    _dead_reason: str
    _drops: int
    _stop: threading.Event
    _reader: threading.Thread | None
    _wake_r: int
    _wake_w: int
    _decoder: codecs.IncrementalDecoder
    _text: str
    _text_base: int
    _ansi: AnsiFilter
    _conn_head: bytearray
    _conn_bytes: int
    _opened_at: float
    busy_grace: float
    _spill: Spill | None
    dropped_chars: int
    _last_rx: float
    _phase: str
    received_bytes: int
    search_window: int
    write_timeout: float

    if TYPE_CHECKING:

        @property
        def log_path(self) -> Path | None: ...

        def _infra(self, message: str) -> InfraError: ...

        def _write(self, data: bytes, *, wait: float = 5.0) -> None: ...

        def _encode(self, data: str | bytes) -> bytes: ...

        def _expect(
            self,
            patterns: Pattern | Sequence[Pattern],
            timeout: float,
            *,
            check_death: bool = True,
            raise_timeout: bool = True,
            overall: float | None = None,
            on_match: Callable[[], None] | None = None,
        ) -> ExpectMatch | None: ...

        def drain(self) -> str: ...

        def _quiet_for(self) -> float: ...

        def _consume(self, abs_pos: int) -> None: ...

        def _raise_death(self, ev: DeathEvent) -> None: ...

        def _make_port(self) -> serial.SerialBase: ...

        @staticmethod
        def _fd_of(port: serial.SerialBase) -> int | None: ...

        def _connection_lost(self, reason: str, *, count: bool = True) -> None: ...

        def _reconnect(self) -> bool: ...

        def _give_up(self, reason: str) -> None: ...

        def _feed(self, data: bytes) -> None: ...

        def _read_loop(self) -> None: ...
