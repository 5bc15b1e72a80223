"""The emulated set-top box (see :mod:`lab.emulator.box`): its state and its lifecycle."""

from __future__ import annotations

import contextlib
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.emulator import bootlog
from lab.emulator.box.boot import BootMixin
from lab.emulator.box.hogs import Hogs
from lab.emulator.box.power import PowerMixin
from lab.emulator.box.system import SystemMixin
from lab.emulator.box.ui import UiMixin
from lab.emulator.config import EmulateSettings
from lab.emulator.console import ConsoleHub
from lab.emulator.defects import Defects
from lab.emulator.screen import ScreenState
from lab.emulator.state import DeviceState
from lab.rig import Rig


class Box(PowerMixin, BootMixin, SystemMixin, UiMixin):
    """One emulated STB (see module docstring)."""

    def __init__(self, rig: Rig, settings: EmulateSettings, *, trusted_keys: list[Any] | None = None) -> None:
        self.rig = rig
        self.settings = settings
        assert settings.state_dir is not None
        self.state = DeviceState.load_or_create(Path(settings.state_dir), settings)
        self.hostname = settings.hostname or rig.name
        self.model = rig.model
        self.kernel_release = bootlog.KERNEL_RELEASE
        self.kernel_date = bootlog.KERNEL_DATE
        self.trusted_keys = list(trusted_keys or [])
        self.hub = ConsoleHub(
            on_input=self.uart_rx,
            baudrate=rig.serial.baudrate if rig.serial is not None else 115200,
            strict_baudrate=settings.strict_baudrate,
        )
        self.overruns = 0
        # Defects draw only from ``rng`` (seeded), so their outcomes depend on the seed and the
        # sequence of events, never on timing; cosmetic randomness (kernel noise, sensor jitter)
        # has its own generator.
        self.rng = random.Random(settings.seed)
        self.noise_rng = random.Random(settings.seed ^ 0x5EED)
        self._lock = threading.RLock()
        self._out_lock = threading.Lock()
        self._col0 = True
        self._gen = 0
        self.powered = False
        self.phase = "off"  # off | bootloader | kernel | running | crashed
        self._input: queue.Queue[bytes] = queue.Queue()
        self._pending = bytearray()
        self._kernel_t0 = time.monotonic()
        self._dmesg: deque[str] = deque(maxlen=2000)
        self._keys: deque[str] = deque(maxlen=64)
        self._key_times: deque[tuple[float, str]] = deque(maxlen=64)
        self.sshd_alive = False
        self.leaked_kb = 0
        self.zaps = 0
        self.standby = False
        self._digit_timer: threading.Timer | None = None
        self._ssh_closers: set[Callable[[], None]] = set()
        self.listeners: list[Callable[[str], None]] = []  # box events ("booted", "off", ...), for tests/IPTV
        last = int(self.state.env.get("last_channel", "1") or 1)
        self.channel = last
        self.defects = Defects(self)
        self.hogs = Hogs(self)  # third-party apps started by the shell's ``hog`` (cleared by a reboot)
        self._screen = ScreenState(kind="off", model=self.model)
        self.boot_env: dict[str, str] = {}
        self.iptv: Any = None  # IptvReceiver when emulate.iptv is set (created at first tune)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop everything (emulator shutdown)."""
        with self._lock:
            self._gen += 1
            self._halt()
        if self.iptv is not None:
            with contextlib.suppress(Exception):
                self.iptv.close()
        self.hub.close()


__all__ = ["Box"]
