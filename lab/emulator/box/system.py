"""The emulated box's system: firmware slots, files and /proc, diag, memory, firmware update."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.emulator.box.base import BoxBase
from lab.emulator.state import Slot
from lab.firmware import ImageError, parse_image

log = logging.getLogger("stblab.emulator.box")

BASE_USED_KB = 310_000  # memory used by a freshly booted box


class SystemMixin(BoxBase):
    """The emulated box's system: firmware slots, files and /proc, diag, memory, firmware update.

    A mixin of :class:`~lab.emulator.box.Box`; the state lives on the box.
    """

    # -- firmware view --------------------------------------------------------------------------

    @property
    def running_slot(self) -> str:
        return self._running_slot if hasattr(self, "_running_slot") else self.state.active

    def running_firmware(self) -> Slot:
        return self.state.slots[self.running_slot]

    def fw_info(self) -> dict[str, str]:
        """``version``, ``build_id`` and ``slot`` of the running firmware."""
        slot = self.running_firmware()
        return {"version": slot.version or "unknown", "build_id": slot.build_id or "unknown", "slot": self.running_slot}

    # -- files ----------------------------------------------------------------------------------

    def fs_path(self, name: str, cwd: str = "/root") -> Path | None:
        """Host path of a writable box path (``/tmp``, ``/data``, ``/root``), or None."""
        if not name.startswith("/"):
            name = cwd.rstrip("/") + "/" + name
        parts = [p for p in name.split("/") if p and p != "."]
        norm: list[str] = []
        for p in parts:
            if p == "..":
                if norm:
                    norm.pop()
            else:
                norm.append(p)
        if not norm or norm[0] not in ("tmp", "data", "root"):
            return None
        root = self.state.fs_root
        (root / norm[0]).mkdir(parents=True, exist_ok=True)
        return root.joinpath(*norm)

    def read_file(self, name: str) -> str | None:
        """Contents of a box file (virtual /proc and /etc files, or the writable filesystem)."""
        virtual = self._virtual_files().get(name.rstrip("/"))
        if virtual is not None:
            return virtual()
        path = self.fs_path(name)
        if path is None or not path.is_file():
            return None
        return path.read_bytes().decode("utf-8", "replace")

    def list_dir(self, name: str) -> list[tuple[str, int]] | None:
        """Entries of a directory as ``(name, size)``; None when it does not exist."""
        if name.rstrip("/") in ("", "/."):
            return [
                (n, 4096) for n in ("bin", "data", "dev", "etc", "proc", "root", "sbin", "sys", "tmp", "usr", "var")
            ]
        m = re.fullmatch(r"/proc/(\d+)/fd/?", name)
        if m:
            fds = self.hogs.fd_count(int(m.group(1)))
            return None if fds is None else [(str(i), 64) for i in range(fds)]
        path = self.fs_path(name)
        if path is None:
            return None
        if path.is_file():
            return [(name, path.stat().st_size)]
        if not path.is_dir():
            return None
        return [(p.name, p.stat().st_size if p.is_file() else 4096) for p in sorted(path.iterdir())]

    def _virtual_files(self) -> dict[str, Callable[[], str]]:
        return {
            "/proc/uptime": lambda: f"{self.uptime():.2f} {self.uptime() * 3.6:.2f}\n",
            "/proc/meminfo": self._meminfo,
            "/proc/version": lambda: (
                f"Linux version {self.kernel_release} (builder@stblab) (arm-linux-gnueabihf-gcc (GCC) 12.2.0) "
                f"#1 SMP PREEMPT {self.kernel_date}\n"
            ),
            "/proc/cmdline": lambda: f"console=ttyS0,115200 rootwait ro stb.slot={self.running_slot}\n",
            "/proc/loadavg": self.hogs.loadavg,
            "/proc/sys/fs/file-nr": self.hogs.file_nr,
            "/etc/hostname": lambda: self.hostname + "\n",
            "/etc/os-release": lambda: (
                f'NAME="stblab STB OS"\nID=stblab\nVERSION_ID={self.fw_info()["version"]}\n'
                f'PRETTY_NAME="stblab STB OS {self.fw_info()["version"]}"\n'
            ),
            "/etc/fw_version": lambda: self.fw_info()["version"] + "\n",
            "/sys/class/thermal/thermal_zone0/temp": lambda: f"{int(48000 + self.noise_rng.random() * 4000)}\n",
            "/proc/device-tree/serial-number": lambda: self.state.serial_number + "\n",
        }

    # -- system view ----------------------------------------------------------------------------

    def uptime(self) -> float:
        return max(0.0, time.monotonic() - self._kernel_t0) if self.phase != "off" else 0.0

    def memory(self) -> tuple[int, int]:
        """(total kB, free kB), accounting the leak of the memory_leak defect."""
        total = self.settings.total_memory_kb
        return total, max(0, total - BASE_USED_KB - self.leaked_kb - self.hogs.mem_kb())

    def _meminfo(self) -> str:
        total, free = self.memory()
        avail = max(0, free - 12_000)
        rows = [
            ("MemTotal", total),
            ("MemFree", free),
            ("MemAvailable", avail),
            ("Buffers", 12_288),
            ("Cached", 98_304),
            ("SwapCached", 0),
            ("Active", 150_000 + self.leaked_kb),
            ("Inactive", 60_000),
            ("AnonPages", 120_000 + self.leaked_kb + self.hogs.mem_kb()),
            ("Shmem", 1_024),
            ("Slab", 24_000),
            ("SwapTotal", 0),
            ("SwapFree", 0),
            ("CmaTotal", 262_144),
            ("CmaFree", 131_072),
        ]
        return "".join(f"{k + ':':<16}{v:>8} kB\n" for k, v in rows)

    def processes(self) -> list[tuple[int, str, int, str, str]]:
        procs = [
            (1, "root", 2_100, "S", "init"),
            (2, "root", 0, "SW", "[kthreadd]"),
            (145, "root", 2_100, "S", "/sbin/syslogd -n"),
            (148, "root", 2_100, "S", "/sbin/klogd -n"),
        ]
        if self.sshd_alive:
            procs.append((301, "root", 4_400, "S", "/usr/sbin/sshd -D"))
        if self.phase == "running":
            procs.append((412, "root", 180_000 + self.leaked_kb, "S", "/usr/bin/stb_app --hdmi --ir"))
            procs += self.hogs.processes()
        procs.append((512, "root", 2_200, "R", "ps"))
        return procs

    def diag(self) -> dict[str, Any]:
        """What ``diag --json`` prints: identity, firmware, slots and hardware history."""
        st = self.state
        h = st.history
        info = self.fw_info()
        return {
            "serial": st.serial_number,
            "model": self.model,
            "hardware_revision": self.settings.hardware_revision,
            "production_lot": self.settings.production_lot,
            "firmware": info,
            "uptime": round(self.uptime(), 2),
            "slots": {
                k: {"version": v.version, "build_id": v.build_id, "sha256": v.sha256} for k, v in st.slots.items()
            },
            "active_slot": st.active,
            "pending_slot": st.pending,
            "bootcount": st.bootcount,
            "boots": st.boots,
            "reboot_reasons": dict(h.get("reboot_reasons", {})),
            "brownouts": h.get("brownouts", 0),
            "overvoltage": h.get("overvoltage", 0),
            "overtemperature": h.get("overtemperature", 0),
            "max_temperature_c": h.get("max_temperature_c", 55.0),
            "hdmi_hotplug": h.get("hdmi_hotplug", 0),
            "edid_failures": h.get("edid_failures", 0),
            "verified_boot": h.get("verified_boot", "ok"),
            "tamper": bool(h.get("tamper", False)),
            "power_on_hours": h.get("power_on_hours", 0.0),
            "memory": dict(zip(("total_kb", "free_kb"), self.memory(), strict=True)),
            "last_events": list(st.last_events[-10:]),
            "tuner": self._tuner_status(),
        }

    def _tuner_status(self) -> dict[str, Any]:
        """What the tuner/IPTV front end reports (channel, state, decoded frames, CC errors)."""
        status: dict[str, Any] = {"channel": self.channel, "source": "iptv" if self.settings.iptv else "internal"}
        if self.iptv is not None:
            stats = self.iptv.stats
            status.update(
                state=self.iptv.state,
                frames=stats.get("frames", 0),
                datagrams=stats.get("datagrams", 0),
                cc_errors=stats.get("cc_errors", 0),
            )
        return status

    # -- firmware update ------------------------------------------------------------------------

    def _flash(self, target: str, version: str, build_id: str, data: bytes, out: Callable[[str], None]) -> bool:
        """Write the image over ``boot.flash_seconds``; False when the power went during the write.

        A power-safe update loses only the half-written copy. A ``torn_update`` image leaves that
        copy marked for trial boot with a corrupt boot environment (see lab.emulator.config).
        """
        seconds = self.settings.boot.flash_seconds
        if seconds <= 0:
            return True
        gen = self._gen
        out(f"fwupdate: erasing slot {target}\n")
        steps = max(1, int(seconds / 0.05))
        for i in range(steps):
            time.sleep(seconds / steps)
            if self._gen != gen or not self.powered:
                from lab.emulator.config import TornUpdate

                if any(isinstance(d, TornUpdate) for d in self.settings.defects_for(version)):
                    with self._lock:
                        self.state.slots[target] = Slot(
                            version=version,
                            build_id=build_id,
                            sha256=hashlib.sha256(data[: len(data) * i // steps]).hexdigest(),
                            installed=time.time(),
                        )
                        self.state.pending = target
                        self.state.torn = True
                        self.state.save()
                return False
        return True

    def fwupdate(self, name: str, out: Callable[[str], None]) -> int:
        """Verify and install an image to the inactive slot, then reboot into it."""
        path = self.fs_path(name)
        if path is None or not path.is_file():
            out(f"fwupdate: {name}: No such file or directory\n")
            return 1
        out(f"fwupdate: verifying {name}\n")
        data = path.read_bytes()
        try:
            image = parse_image(data)
            image.verify(self.trusted_keys, model=self.model)
        except ImageError as exc:
            out(f"fwupdate: error: {exc} ({exc.reason})\n")
            self.kmsg(f"fwupdate: image rejected: {exc.reason}", console=False)
            return 1
        target = "B" if self.running_slot == "A" else "A"
        if not self._flash(target, image.version, image.build_id, data, out):
            return 1
        with self._lock:
            slots_dir = self.state.state_dir / "slots"
            slots_dir.mkdir(exist_ok=True)
            tmp = slots_dir / f"{target}.img.tmp"
            tmp.write_bytes(data)
            tmp.replace(slots_dir / f"{target}.img")
            self.state.torn = False
            self.state.slots[target] = Slot(
                version=image.version,
                build_id=image.build_id,
                sha256=hashlib.sha256(data).hexdigest(),
                installed=time.time(),
            )
            self.state.pending = target
            self.state.bootcount = 0
            self.state.last_events = (self.state.last_events + [f"installed {image.version} to slot {target}"])[-20:]
            self.state.save()
        out(f"fwupdate: signature OK (key {image.manifest.get('key_id')}), model {image.model}\n")
        out(f"fwupdate: writing {image.version} (build {image.build_id}) to slot {target}: {len(data)} bytes\n")
        out(f"fwupdate: slot {target} marked for trial boot (bootlimit {self.state.bootlimit}); rebooting\n")
        self.request_reboot("fwupdate", delay=0.5)
        return 0
