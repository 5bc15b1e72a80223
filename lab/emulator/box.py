"""The emulated set-top box: power, boot, console session, screen, keys, firmware, defects.

One :class:`Box` per emulated rig. Instruments (console servers, SSH, PDU, HDMI, IR) are wired to
it by :mod:`lab.emulator.process`; the box only knows its UART (``ConsoleHub``), its screen state
and its persistent :class:`~lab.emulator.state.DeviceState`.

Power-on runs a boot thread: U-Boot banner and autoboot countdown (a key press stops it at the
``=> `` prompt), kernel log with timestamps, init, then the login prompt and shell on the console.
Every power event bumps a generation counter; threads of an older generation stop at their next
step, so power off silences the console at once.

Example::

    box = Box(rig, settings)
    box.set_power(True)          # what the PDU does
    box.press_key("KEY_CHANNELUP")
    state = box.screen_state()   # what the HDMI output shows
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.emulator import bootlog
from lab.emulator.config import EmulateSettings
from lab.emulator.console import ConsoleHub
from lab.emulator.defects import Defects
from lab.emulator.shell import Cancelled, SessionExit, Shell
from lab.emulator.state import DeviceState, Slot
from lab.firmware import ImageError, parse_image
from lab.rig import Rig

try:  # HDMI screen model (engineer E2); the box runs without it.
    from lab.emulator.screen import BANNER_SECONDS, ScreenState, channel, channel_numbers
except ImportError:  # pragma: no cover - only while screen.py does not exist
    ScreenState = None  # type: ignore[assignment,misc]
    BANNER_SECONDS = 4.0

    def channel_numbers() -> list[int]:  # type: ignore[misc]
        return list(range(1, 11))

    channel = None  # type: ignore[assignment]

log = logging.getLogger("stblab.emulator.box")

BASE_USED_KB = 310_000  # memory used by a freshly booted box
OOM_FREE_KB = 40_000  # the OOM killer fires below this


def _norm_key(name: str) -> str:
    name = name.strip().upper()
    return name[4:] if name.startswith("KEY_") else name


class Box:
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
        self._screen = ScreenState(kind="off", model=self.model) if ScreenState is not None else None
        self.boot_env: dict[str, str] = {}
        self.iptv: Any = None  # IptvReceiver when emulate.iptv is set (created at first tune)

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

    # -- console output -------------------------------------------------------------------------

    def console(self, text: str) -> None:
        """Write text to the UART (``\\n`` becomes ``\\r\\n``); silent while powered off."""
        if not self.powered or not text:
            return
        data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8", "replace")
        with self._out_lock:
            if not self.powered:  # lost power while waiting for the UART
                return
            self.hub.write(data)
            self._col0 = data.endswith(b"\n")

    def _timestamp(self) -> str:
        t = max(0.0, time.monotonic() - self._kernel_t0)
        return f"[{t:12.6f}]"

    def kmsg(self, text: str, *, console: bool = True) -> None:
        """A kernel message: into dmesg and (at console loglevel) onto the console, as its own line."""
        line = f"{self._timestamp()} {text}"
        self._dmesg.append(line)
        if console and self.powered:
            data = line.encode() + b"\r\n"
            with self._out_lock:
                if not self.powered:  # lost power while waiting for the UART
                    return
                if not self._col0:
                    data = b"\r\n" + data
                self.hub.write(data)
                self._col0 = True

    def kernel_log(self) -> list[str]:
        return list(self._dmesg)

    def _emit(self, event: str) -> None:
        for fn in list(self.listeners):
            with contextlib.suppress(Exception):
                fn(event)

    # -- power ----------------------------------------------------------------------------------

    def set_power(self, on: bool) -> None:
        """The PDU outlet switched: off kills everything at once; on cold-boots the box."""
        with self._lock:
            if on == self.powered:
                return
            self._gen += 1
            if not on:
                self.defects.on_power_cut(booting=self.phase not in ("off", "running"))
                if self.phase == "running":
                    self.state.reboot_reason("power-loss")
                    self.state.save()
                self._halt()
                self._emit("off")
                return
            self.powered = True
            self.state.reboot_reason("power-on")
            self._start_boot(self._gen, delay=0.05)

    def _halt(self) -> None:
        self.powered = False
        self.phase = "off"
        self.sshd_alive = False
        self.standby = False
        self._drop_ssh()
        self.defects.stop()
        self._iptv_stop()
        self._set_screen(kind="off", frozen=False, black=False)
        self._drain_input()

    def _drop_ssh(self) -> None:
        for close in list(self._ssh_closers):
            with contextlib.suppress(Exception):
                close()
        self._ssh_closers.clear()

    def register_ssh(self, close: Callable[[], None]) -> Callable[[], None]:
        """SSH sessions register a closer so power loss / reboot / sshd death drops them."""
        self._ssh_closers.add(close)
        return lambda: self._ssh_closers.discard(close)

    def ssh_allowed(self) -> bool:
        """True when sshd accepts connections (box running, daemon alive)."""
        return self.powered and self.phase == "running" and self.sshd_alive

    def request_reboot(self, reason: str, delay: float = 0.0) -> None:
        """Reboot as ``reboot`` does (or a watchdog/panic does, by ``reason``)."""
        with self._lock:
            gen = self._gen
        if reason in ("reboot", "fwupdate", "reset"):
            threading.Thread(target=self._soft_reboot, args=(gen, reason, delay), daemon=True).start()
        else:
            self._reboot_now(gen, reason, delay)

    def _soft_reboot(self, gen: int, reason: str, delay: float) -> None:
        time.sleep(delay)
        with self._lock:
            if gen != self._gen or not self.powered:
                return
        if reason != "reset":
            self.console("The system is going down NOW!\nSent SIGTERM to all processes\n")
            self.kmsg("reboot: Restarting system")
        self._reboot_now(gen, reason, 0.0)

    def _reboot_now(self, gen: int, reason: str, delay: float) -> None:
        with self._lock:
            if gen != self._gen or not self.powered:
                return
            self._gen += 1
            self.state.reboot_reason(reason)
            self.state.save()
            self.phase = "bootloader"
            self.sshd_alive = False
            self.standby = False
            self._drop_ssh()
            self.defects.stop()
            self._iptv_stop()
            self._start_boot(self._gen, delay=delay)

    def request_poweroff(self) -> None:
        """``poweroff``: the box halts (the outlet stays on; the PDU must cycle it to boot again)."""
        with self._lock:
            gen = self._gen

        def halt() -> None:
            time.sleep(0.2)
            with self._lock:
                if gen != self._gen:
                    return
                self.console("The system is going down NOW!\n")
                self.kmsg("reboot: Power down")
                self._gen += 1
                # A halted box is silent, off the network and dark, as after power loss; only the
                # outlet stays "on".
                self._halt()

        threading.Thread(target=halt, daemon=True).start()

    # -- UART input -----------------------------------------------------------------------------

    def uart_rx(self, data: bytes) -> None:
        """Bytes from a console client (ignored while off, as a dead UART ignores them)."""
        if not self.powered:
            return
        fifo = self.settings.uart_fifo_bytes
        if fifo and len(data) > fifo:
            self.overruns += len(data) - fifo
            data = data[:fifo]
            self.kmsg(f"ttyS0: {self.overruns} input overrun(s)", console=False)
        self._input.put(bytes(data))

    def _drain_input(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self._input.get_nowait()
        self._pending.clear()

    def _alive(self, gen: int) -> bool:
        return gen == self._gen and self.powered

    def _pull(self, timeout: float) -> None:
        try:
            self._pending += self._input.get(timeout=timeout)
        except queue.Empty:
            return
        with contextlib.suppress(queue.Empty):
            while True:
                self._pending += self._input.get_nowait()

    def _wait_any_key(self, gen: int, seconds: float) -> bool:
        end = time.monotonic() + seconds
        while self._alive(gen):
            if self._pending:
                self._pending.clear()
                return True
            left = end - time.monotonic()
            if left <= 0:
                return False
            self._pull(min(left, 0.1))
        raise _PowerLost

    def _readline(self, gen: int, *, echo: bool = True) -> str:
        """Read one line from the UART with echo and simple line editing (backspace, Ctrl-C, Ctrl-U)."""
        line: list[str] = []
        while True:
            if not self._alive(gen):
                raise _PowerLost
            if not self._pending:
                self._pull(0.1)
                continue
            b = self._pending[0]
            del self._pending[0]
            if b in (0x0D, 0x0A):
                if b == 0x0D and self._pending[:1] == b"\n":
                    del self._pending[0]
                self.console("\n")
                return "".join(line)
            if b == 0x03:
                self.console("^C\n")
                raise Cancelled
            if b in (0x08, 0x7F):
                if line:
                    line.pop()
                    if echo:
                        self.console("\b \b")
                continue
            if b == 0x15:
                if echo and line:
                    self.console("\b \b" * len(line))
                line.clear()
                continue
            if 0x20 <= b < 0x7F and len(line) < 4096:
                line.append(chr(b))
                if echo:
                    self.console(chr(b))
            # anything else (escape sequences, 8-bit garbage, NUL) is ignored like line noise

    def _ctrl_c_pending(self) -> bool:
        with contextlib.suppress(queue.Empty):
            while True:
                self._pending += self._input.get_nowait()
        idx = self._pending.find(b"\x03")
        if idx >= 0:
            del self._pending[: idx + 1]
            return True
        return False

    # -- boot -----------------------------------------------------------------------------------

    def _start_boot(self, gen: int, delay: float) -> None:
        self.phase = "bootloader"
        t = threading.Thread(target=self._boot_thread, args=(gen, delay), name=f"boot-{gen}", daemon=True)
        t.start()

    def _boot_thread(self, gen: int, delay: float) -> None:
        try:
            if delay:
                time.sleep(delay)
            if not self._alive(gen):
                return
            self._boot(gen)
        except _PowerLost:
            return
        except Exception:  # the emulator must not die with the box
            log.exception("boot thread failed")

    def _sleep(self, gen: int, seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            if not self._alive(gen):
                raise _PowerLost
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))

    def _boot(self, gen: int) -> None:
        st = self.state
        timings = self.settings.boot
        self._drain_input()
        self._set_screen(kind="boot", boot_progress=0.0, frozen=False, black=False, menu_index=0, digits="")
        with self._lock:
            st.boots += 1
            if st.pending:
                st.bootcount += 1
                if st.bootcount > st.bootlimit:
                    failed = st.pending
                    st.pending = None
                    st.bootcount = 0
                    st.reboot_reason("rollback")
                    st.last_events = (st.last_events + [f"rollback from slot {failed}"])[-20:]
            st.save()
            slot = st.booting_slot()
            self._running_slot = slot
        self.boot_env = self._default_env(slot)
        verified = str(st.history.get("verified_boot", "ok"))
        for line in bootlog.uboot_banner(self.model, self.settings.hardware_revision, st.serial_number, slot, verified):
            self.console(line + "\n")
        if self.state.last_events and self.state.last_events[-1].startswith("rollback from") and not st.pending:
            self.console(f"Warning: Bootlimit ({st.bootlimit}) exceeded. Using altbootcmd.\n")
            self.console(f"Falling back to slot {slot}\n")
            st.last_events.append("rollback-reported")
            st.save()
        if st.pending:
            self.console(f"bootcount={st.bootcount} bootlimit={st.bootlimit} (trying slot {slot})\n")
        try:
            bootdelay = min(30, int(self.boot_env.get("bootdelay", timings.bootdelay) or 0))
        except ValueError:  # U-Boot treats a non-number like its default
            bootdelay = timings.bootdelay
        interrupted = False
        if bootdelay > 0:
            for n in range(bootdelay, 0, -1):
                prefix = "Hit any key to stop autoboot: " if n == bootdelay else "\b\b\b"
                self.console(f"{prefix}{n:2d} ")
                if self._wait_any_key(gen, timings.countdown_step):
                    interrupted = True
                    self.console("\b\b\b 0 \n")
                    break
            else:
                self.console("\b\b\b 0 \n")
        if interrupted and not self._bootloader(gen):
            return
        self._kernel(gen, slot)

    def _default_env(self, slot: str) -> dict[str, str]:
        st = self.state
        env = {
            "arch": "arm",
            "baudrate": "115200",
            "board": "stb4k",
            "boot_slot": slot,
            "bootcmd": f"run boot_{slot.lower()}",
            "bootcount": str(st.bootcount),
            "bootdelay": str(self.settings.boot.bootdelay),
            "bootlimit": str(st.bootlimit),
            "altbootcmd": f"run boot_{st.active.lower()}",
            "upgrade_available": "1" if st.pending else "0",
            "console": "ttyS0,115200n8",
            "ethaddr": "02:42:" + ":".join(st.serial_number.encode().hex()[i : i + 2] for i in range(0, 8, 2)),
            "serial#": st.serial_number,
            "ver": bootlog.UBOOT_VERSION,
        }
        env.update({k: v for k, v in st.env.items() if not k.startswith("_") and k != "last_channel"})
        return env

    def _bootloader(self, gen: int) -> bool:
        """The ``=> `` prompt. Returns True to continue booting the kernel, False when reset."""
        while True:
            self.console("=> ")
            try:
                line = self._readline(gen).strip()
            except Cancelled:
                continue
            if not line:
                continue
            cmd, _, rest = line.partition(" ")
            if cmd == "printenv":
                names = rest.split()
                for key in sorted(self.boot_env):
                    if not names or key in names:
                        self.console(f"{key}={self.boot_env[key]}\n")
                for name in names:
                    if name not in self.boot_env:
                        self.console(f'## Error: "{name}" not defined\n')
                if not names:
                    size = sum(len(k) + len(v) + 2 for k, v in self.boot_env.items())
                    self.console(f"\nEnvironment size: {size}/65532 bytes\n")
            elif cmd == "setenv":
                name, _, value = rest.strip().partition(" ")
                if not name:
                    self.console("setenv - set environment variables\n\nUsage:\nsetenv name value ...\n")
                elif value:
                    self.boot_env[name] = value.strip()
                else:
                    self.boot_env.pop(name, None)
            elif cmd == "saveenv":
                keep = {
                    k: v for k, v in self.boot_env.items() if k in ("bootdelay",) or k not in self._default_env("A")
                }
                self.state.env.update(keep)
                self.state.save()
                self.console("Saving Environment to MMC... Writing to MMC(0)... OK\n")
            elif cmd in ("boot", "bootd", "run"):
                return True
            elif cmd == "reset":
                self.console("resetting ...\n")
                self.request_reboot("reset")
                raise _PowerLost
            elif cmd == "version":
                self.console(bootlog.UBOOT_VERSION + "\n" + "arm-linux-gnueabihf-gcc (GCC) 12.2.0\nGNU ld 2.40\n")
            elif cmd in ("help", "?"):
                for text in bootlog.uboot_help():
                    self.console(text + "\n")
            else:
                self.console(f"Unknown command '{cmd}' - try 'help'\n")

    def _kernel(self, gen: int, slot: str) -> None:
        timings = self.settings.boot
        version = self.state.slots[slot].version or "unknown"
        self.phase = "kernel"
        self.console("\n## Loading kernel from FIT Image at 02080000 ...\n   Verifying Hash Integrity ... sha256+ OK\n")
        self.console("Starting kernel ...\n\n")
        self._kernel_t0 = time.monotonic()
        self._dmesg.clear()
        part = 5 if slot == "A" else 6
        cmdline = f"console=ttyS0,115200 root=/dev/mmcblk0p{part} rootwait ro stb.slot={slot}"
        lines = bootlog.kernel_boot_lines(self.model, self.kernel_release, cmdline, part)
        step = timings.kernel_seconds / max(1, len(lines))
        fails = self.defects.boot_fails(version)
        for i, text in enumerate(lines):
            self._sleep(gen, step)
            self.kmsg(text)
            self._set_screen(boot_progress=0.8 * (i + 1) / len(lines))
            if fails and text.startswith("VFS: Mounted root"):
                for fail in bootlog.boot_fail_lines(self.kernel_release):
                    self.kmsg(fail)
                self._crash(gen, "boot-fail")
                return
        self._sleep(gen, timings.init_seconds / 2)
        for text in bootlog.init_lines(version, self.hostname):
            self.console(text + "\n")
        self._sleep(gen, timings.init_seconds / 2)
        with self._lock:
            if not self._alive(gen):
                raise _PowerLost
            st = self.state
            if st.pending == slot:  # the new slot booted: make it the active one
                st.active = slot
                st.pending = None
                st.bootcount = 0
                st.last_events = (st.last_events + [f"slot {slot} confirmed"])[-20:]
                st.save()
            self.phase = "running"
            self.sshd_alive = True
            self.leaked_kb = 0
            self.zaps = 0
            self.standby = False
            self._keys.clear()
        self.defects.start(version)
        self._tune_screen(self.channel, banner=True)
        self._emit("booted")
        self._getty(gen)

    def _crash(self, gen: int, reason: str) -> None:
        """The box died: freeze the picture, drop SSH, let the watchdog reset it."""
        with self._lock:
            if not self._alive(gen):
                raise _PowerLost
            self.phase = "crashed"
            self.sshd_alive = False
            self._drop_ssh()
            self.defects.stop()
            self._iptv_stop()
            self._set_screen(frozen=True, frozen_at=time.monotonic())
        self._sleep(gen, self.settings.boot.watchdog_seconds)
        self.kmsg("watchdog: watchdog0: watchdog did not stop! hardware reset")
        self._reboot_now(gen, "watchdog" if reason != "oom" else "oom", 0.05)

    def crash(self, reason: str, lines: list[str]) -> None:
        """Print crash lines as kernel messages and let the watchdog reboot (defects call this)."""
        with self._lock:
            gen = self._gen
            if not self._alive(gen) or self.phase != "running":
                return
            self.phase = "crashed"

        def run() -> None:
            for text in lines:
                self.kmsg(text)
            with contextlib.suppress(_PowerLost):
                self._crash(gen, reason)

        threading.Thread(target=run, daemon=True).start()

    # -- console session ------------------------------------------------------------------------

    def _getty(self, gen: int) -> None:
        password = self.settings.password()
        self._drain_input()  # getty flushes what was typed while the kernel booted
        while self._alive(gen):
            self.console(f"\n{self.hostname} login: ")
            try:
                user = self._readline(gen).strip()
            except Cancelled:
                continue
            if not user:
                continue
            if password is not None:
                self.console("Password: ")
                try:
                    given = self._readline(gen, echo=False)
                except Cancelled:
                    continue
                if user != "root" or given != password:
                    time.sleep(0.5)
                    self.console("Login incorrect\n")
                    continue
            elif user != "root":
                self.console("Login incorrect\n")
                continue
            self._session(gen)

    def _session(self, gen: int) -> None:
        shell = Shell(self, transport="console")
        while self._alive(gen) and self.phase in ("running", "crashed"):
            self.console(f"root@{self.hostname}:~# ")
            try:
                line = self._readline(gen)
            except Cancelled:
                shell.status = 130
                continue
            if not line.strip():
                continue
            try:
                shell.run(line, out=self.console, cancelled=lambda: self._ctrl_c_pending() or not self._alive(gen))
            except SessionExit:
                self.console("logout\n")
                return
            except _PowerLost:
                raise
            except Exception as exc:  # a command's bug must not take the console down
                log.exception("console command failed: %r", line)
                self.console(f"-sh: {line.split()[0]}: {type(exc).__name__}\n")
                shell.status = 1
            if not self._alive(gen):
                raise _PowerLost

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
            "/proc/loadavg": lambda: "0.12 0.08 0.02 1/87 512\n",
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
        return total, max(0, total - BASE_USED_KB - self.leaked_kb)

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
            ("AnonPages", 120_000 + self.leaked_kb),
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
        with self._lock:
            target = "B" if self.running_slot == "A" else "A"
            slots_dir = self.state.state_dir / "slots"
            slots_dir.mkdir(exist_ok=True)
            tmp = slots_dir / f"{target}.img.tmp"
            tmp.write_bytes(data)
            tmp.replace(slots_dir / f"{target}.img")
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

    # -- screen and keys ------------------------------------------------------------------------

    def screen_state(self) -> Any:
        """The current :class:`ScreenState` (what the HDMI output draws)."""
        return self._screen

    def _set_screen(self, **changes: Any) -> None:
        if self._screen is None:
            return
        with self._lock:
            if "firmware_version" not in changes and self.phase != "off":
                changes["firmware_version"] = self.fw_info()["version"]
            self._screen = self._screen.replace(**changes)

    def _tune_screen(self, number: int, *, banner: bool) -> None:
        known = number in channel_numbers()
        kind = "live" if known else "no_channel"
        name = channel(number).name if channel is not None and known else f"Channel {number}"
        frozen = self.defects.frozen
        changes: dict[str, Any] = {"kind": kind, "channel": number, "channel_name": name, "digits": ""}
        changes["banner_until"] = time.monotonic() + BANNER_SECONDS if banner else 0.0
        changes["frozen"] = frozen
        if frozen and self._screen is not None and not self._screen.frozen:
            changes["frozen_at"] = time.monotonic()
        changes["black"] = self.defects.black
        rx = self._iptv_receiver() if known else None
        if rx is not None:
            changes["live_frame"] = rx.latest_frame
            rx.tune(number)
        self._set_screen(**changes)

    def _iptv_receiver(self) -> Any:
        """The IPTV receiver (lab.emulator.iptv), made on first use; None when not configured."""
        cfg = self.settings.iptv
        if cfg is None:
            return None
        if self.iptv is None:
            from lab.emulator.headend import ChannelMap
            from lab.emulator.iptv import IptvReceiver

            cmap = ChannelMap.load(cfg.channel_map) if cfg.channel_map else ChannelMap.default()
            ns = cfg.namespace
            if ns == "rig":
                ns = self.rig.network.namespace if self.rig.network is not None else None
            self.iptv = IptvReceiver(
                cmap,
                namespace=ns,
                interface_ip=cfg.interface_ip,
                on_state=self._iptv_state,
                no_signal_after=cfg.no_signal_after,
            )
        return self.iptv

    def _iptv_state(self, state: str) -> None:
        """Receiver state -> screen: no datagrams = the box's "no signal on this channel" screen."""
        screen = self._screen
        if screen is None or self.phase != "running" or self.standby:
            return
        if state == "no_signal" and screen.kind == "live":
            self._set_screen(kind="no_channel")
        elif state == "playing" and screen.kind == "no_channel" and screen.channel in channel_numbers():
            self._set_screen(kind="live")

    def _iptv_stop(self) -> None:
        if self.iptv is not None:
            with contextlib.suppress(Exception):
                self.iptv.stop()

    def in_standby(self) -> bool:
        return self.standby

    def recent_keys(self) -> list[str]:
        return list(self._keys)

    def tune(self, number: int) -> tuple[bool, str]:
        """Change channel (``tune N`` and IR digits). Returns (ok, message)."""
        with self._lock:
            if self.phase != "running":
                return False, "tune: box not running"
            if self.standby:
                return False, "tune: box in standby"
            self.channel = number
            self.state.env["last_channel"] = str(number)
            self.zaps += 1
        self.defects.on_zap()
        if self.phase != "running":
            return False, "tune: box crashed"
        self._tune_screen(number, banner=True)
        if number not in channel_numbers():
            self.kmsg(f"dvb_core: no signal on channel {number}", console=False)
            return False, f"tuned={number} signal=none"
        return True, f"tuned={number} name={self._screen.channel_name if self._screen else number}"

    def press_key(self, key: str) -> None:
        """A decoded IR key (from the iTach or lircd receiver): drives the UI state machine."""
        name = _norm_key(key)
        with self._lock:
            if self.phase != "running":
                return
            self._keys.append("KEY_" + name)
        self.kmsg(f"stb_ir: key KEY_{name}", console=False)
        if self.defects.on_key("KEY_" + name):
            return
        if name == "POWER":
            self._toggle_standby()
            return
        if self.standby:
            return
        kind = self._screen.kind if self._screen is not None else "live"
        numbers = channel_numbers()
        if name.isdigit() and len(name) == 1:
            self._digit(name)
        elif name in ("CHANNELUP", "CHANNELDOWN"):
            cur = self.channel if self.channel in numbers else numbers[0]
            i = numbers.index(cur) + (1 if name == "CHANNELUP" else -1)
            self.tune(numbers[i % len(numbers)])
        elif name in ("MENU", "HOME"):
            self._set_screen(kind="home", menu_index=0, digits="")
        elif name in ("EPG", "GUIDE"):
            self._set_screen(
                kind="guide", menu_index=max(0, numbers.index(self.channel)) if self.channel in numbers else 0
            )
        elif name in ("SETUP", "SETTINGS"):
            self._set_screen(kind="settings", menu_index=0)
        elif name in ("BACK", "EXIT"):
            self._tune_screen(self.channel, banner=False)
        elif name == "INFO":
            self._tune_screen(self.channel, banner=True)
        elif name == "MUTE" and self._screen is not None:
            self._set_screen(muted=not self._screen.muted)
        elif name in ("UP", "DOWN") and kind in ("home", "settings", "guide"):
            self._move(1 if name == "DOWN" else -1, kind)
        elif name == "OK":
            self._ok(kind)

    def _move(self, delta: int, kind: str) -> None:
        from lab.emulator import screen as scr

        size = {"home": len(scr.HOME_ITEMS), "settings": len(scr.SETTINGS_ITEMS)}.get(kind, len(channel_numbers()))
        self._set_screen(menu_index=(self._screen.menu_index + delta) % size)

    def _ok(self, kind: str) -> None:
        if self._screen is None:
            return
        if self._screen.digits:
            self._commit_digits()
        elif kind == "home":
            item = ("live", "guide", "home", "home", "settings")[self._screen.menu_index % 5]
            if item == "live":
                self._tune_screen(self.channel, banner=True)
            elif item != "home":
                self._set_screen(kind=item, menu_index=0)
        elif kind == "guide":
            self.tune(channel_numbers()[self._screen.menu_index % len(channel_numbers())])

    def _digit(self, d: str) -> None:
        digits = ((self._screen.digits if self._screen else "") + d)[-3:]
        self._set_screen(digits=digits)
        if self._digit_timer:
            self._digit_timer.cancel()
        if len(digits) >= 2:
            self._commit_digits()
            return
        self._digit_timer = threading.Timer(1.0, self._commit_digits)
        self._digit_timer.daemon = True
        self._digit_timer.start()

    def _commit_digits(self) -> None:
        if self._digit_timer:
            self._digit_timer.cancel()
        digits = self._screen.digits if self._screen else ""
        if digits and self.phase == "running":
            self.tune(int(digits))

    def _toggle_standby(self) -> None:
        with self._lock:
            self.standby = not self.standby
            entering = self.standby
        if entering:
            self.kmsg("stb_hdmi: entering standby, output muted", console=False)
            self._iptv_stop()
            self._set_screen(kind="standby", digits="")
        else:
            self.kmsg("stb_hdmi: resume from standby", console=False)
            self.defects.on_resume()
            self._tune_screen(self.channel, banner=True)
        self._emit("standby" if entering else "resume")

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


class _PowerLost(Exception):
    """The boot/console thread's generation ended (power off, reboot)."""


__all__ = ["Box"]
