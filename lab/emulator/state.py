"""The persistent state of one emulated device: firmware slots, boot counters, hardware history.

Kept as ``device.json`` in the device's state folder (written atomically), next to the SSH host
key (``ssh_host_ed25519_key``), the installed images (``slots/A.img``, ``slots/B.img``) and the
box's writable filesystem (``fs/tmp``, ``fs/data``). Restarting the emulator brings back the same
device.

Example::

    state = DeviceState.load_or_create(state_dir, settings)
    state.history["brownouts"] += 1
    state.save()
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lab.emulator.config import EmulateSettings


@dataclass
class Slot:
    """One firmware slot (A or B)."""

    version: str | None = None
    build_id: str | None = None
    sha256: str | None = None
    installed: float | None = None


@dataclass
class DeviceState:
    """Everything about the device that survives power cycles and emulator restarts."""

    path: Path
    serial_number: str
    slots: dict[str, Slot] = field(default_factory=lambda: {"A": Slot(), "B": Slot()})
    active: str = "A"
    pending: str | None = None  # slot on trial after fwupdate (U-Boot's upgrade_available)
    bootcount: int = 0
    bootlimit: int = 3
    torn: bool = False  # a torn (non power-safe) update left a corrupt slot and boot environment
    factory_firmware: str | None = None
    boots: int = 0
    history: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    last_events: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def state_dir(self) -> Path:
        return self.path.parent

    @property
    def fs_root(self) -> Path:
        return self.state_dir / "fs"

    @property
    def host_key_path(self) -> Path:
        return self.state_dir / "ssh_host_ed25519_key"

    def booting_slot(self) -> str:
        """The slot the bootloader will try next."""
        return self.pending or self.active

    @classmethod
    def load_or_create(cls, state_dir: Path, settings: EmulateSettings) -> DeviceState:
        """Load ``state_dir/device.json`` or make a factory-fresh device from ``settings``.

        If the rig file names a different factory firmware than the one recorded, the active
        slot is reflashed with it (as a lab engineer reflashes a box over JTAG).
        """
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / "fs" / "tmp").mkdir(parents=True, exist_ok=True)
        (state_dir / "fs" / "data").mkdir(parents=True, exist_ok=True)
        path = state_dir / "device.json"
        fw = settings.firmware
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            state = cls(
                path=path,
                serial_number=data.get("serial_number", settings.serial_number),
                slots={k: Slot(**v) for k, v in data.get("slots", {}).items()} or {"A": Slot(), "B": Slot()},
                active=data.get("active", "A"),
                pending=data.get("pending"),
                bootcount=int(data.get("bootcount", 0)),
                bootlimit=int(data.get("bootlimit", 3)),
                torn=bool(data.get("torn", False)),
                factory_firmware=data.get("factory_firmware"),
                boots=int(data.get("boots", 0)),
                history=data.get("history", {}),
                env=data.get("env", {}),
                last_events=data.get("last_events", []),
            )
        else:
            state = cls(path=path, serial_number=settings.serial_number)
            state.history = settings.hardware_history.model_dump()
            state.history["reboot_reasons"] = dict(state.history.get("reboot_reasons", {}))
        spec = f"{fw.version}/{fw.build_id or ''}"
        if state.factory_firmware != spec:
            state.slots[state.active] = Slot(version=fw.version, build_id=fw.build_id or _build_id(fw.version))
            state.pending = None
            state.bootcount = 0
            state.torn = False
            state.factory_firmware = spec
        for key, value in settings.hardware_history.model_dump().items():
            state.history.setdefault(key, value)
        state.save()
        return state

    def save(self) -> None:
        """Write device.json atomically (temp file + rename)."""
        names = ("serial_number", "active", "pending", "bootcount", "bootlimit", "torn", "factory_firmware", "boots")
        data: dict[str, Any] = {k: getattr(self, k) for k in names}
        data["slots"] = {k: asdict(v) for k, v in self.slots.items()}
        data["history"] = self.history
        data["env"] = self.env
        data["last_events"] = self.last_events
        tmp = self.path.with_suffix(".tmp")
        with self._lock:
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to a hardware history counter."""
        self.history[key] = int(self.history.get(key, 0)) + n

    def reboot_reason(self, reason: str) -> None:
        """Record why the box (re)booted."""
        reasons = self.history.setdefault("reboot_reasons", {})
        reasons[reason] = int(reasons.get(reason, 0)) + 1
        self.last_events = (self.last_events + [reason])[-20:]


def _build_id(version: str) -> str:
    return "b" + "".join(ch for ch in version if ch.isdigit())


__all__ = ["DeviceState", "Slot"]
