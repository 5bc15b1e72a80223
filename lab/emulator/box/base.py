"""What every part of the emulated box shares: its state, declared once for the type checker.

:class:`~lab.emulator.box.Box` is assembled from mixins, one per concept (power and UART, boot,
system, UI). Each mixin inherits :class:`BoxBase`, so the attributes ``Box.__init__`` sets and the
methods one mixin calls on another are typed in every mixin. The method declarations exist only
for the type checker; at run time the mixins' own definitions are the only ones.
"""

from __future__ import annotations

import queue
import random
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lab.emulator.box.hogs import Hogs
    from lab.emulator.config import EmulateSettings
    from lab.emulator.console import ConsoleHub
    from lab.emulator.defects import Defects
    from lab.emulator.screen import ScreenState
    from lab.emulator.state import DeviceState
    from lab.rig import Rig


class BoxBase:
    """The box's state (set in ``Box.__init__``) and the methods its mixins call on each other."""

    rig: Rig
    settings: EmulateSettings
    state: DeviceState
    hostname: str
    model: str
    kernel_release: str
    kernel_date: str
    trusted_keys: list[Any]
    hub: ConsoleHub
    overruns: int
    rng: random.Random
    noise_rng: random.Random
    _lock: threading.RLock
    _out_lock: threading.Lock
    _col0: bool
    _gen: int
    powered: bool
    phase: str  # off | bootloader | kernel | running | crashed
    _input: queue.Queue[bytes]
    _pending: bytearray
    _kernel_t0: float
    _dmesg: deque[str]
    _keys: deque[str]
    _key_times: deque[tuple[float, str]]
    sshd_alive: bool
    leaked_kb: int
    zaps: int
    standby: bool
    _digit_timer: threading.Timer | None
    _ssh_closers: set[Callable[[], None]]
    listeners: list[Callable[[str], None]]
    channel: int
    defects: Defects
    hogs: Hogs
    _screen: ScreenState
    boot_env: dict[str, str]
    iptv: Any  # IptvReceiver when emulate.iptv is set (created at first tune)
    _running_slot: str

    if TYPE_CHECKING:
        # power and UART (power.py)
        def console(self, text: str) -> None: ...
        def kmsg(self, text: str, *, console: bool = True) -> None: ...
        def uart_rx(self, data: bytes) -> None: ...
        def request_reboot(self, reason: str, delay: float = 0.0) -> None: ...
        def _emit(self, event: str) -> None: ...
        def _halt(self) -> None: ...
        def _drop_ssh(self) -> None: ...
        def _reboot_now(self, gen: int, reason: str, delay: float) -> None: ...
        def _alive(self, gen: int) -> bool: ...
        def _drain_input(self) -> None: ...
        def _readline(self, gen: int, *, echo: bool = True) -> str: ...
        def _wait_any_key(self, gen: int, seconds: float) -> bool: ...
        def _ctrl_c_pending(self) -> bool: ...

        # boot (boot.py)
        def _start_boot(self, gen: int, delay: float) -> None: ...

        # system (system.py)
        def fw_info(self) -> dict[str, str]: ...

        # UI (ui.py)
        def _set_screen(self, **changes: Any) -> None: ...
        def _tune_screen(self, number: int, *, banner: bool) -> None: ...
        def _iptv_stop(self) -> None: ...
