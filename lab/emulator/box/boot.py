"""Booting the emulated box: bootloader, kernel, getty and the console session."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, cast

from lab.emulator import bootlog
from lab.emulator.box.base import BoxBase
from lab.emulator.box.power import _PowerLost
from lab.emulator.shell import Cancelled, SessionExit, Shell

if TYPE_CHECKING:
    from lab.emulator.box.core import Box

log = logging.getLogger("stblab.emulator.box")


class BootMixin(BoxBase):
    """Booting the emulated box: bootloader, kernel, getty and the console session.

    A mixin of :class:`~lab.emulator.box.Box`; the state lives on the box.
    """

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
            if st.pending and st.torn:
                st.bootcount = 0  # the torn environment's CRC fails: U-Boot starts from defaults
            elif st.pending:
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
        if st.pending and st.torn:
            self.console("*** Warning - bad CRC, using default environment\n")
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
            if cmd in ("boot", "bootd", "run"):
                return True
            self._uboot_command(cmd, rest)

    def _uboot_command(self, cmd: str, rest: str) -> None:
        """One U-Boot command other than boot (``reset`` raises _PowerLost after asking for a reboot)."""
        if cmd == "printenv":
            self._uboot_printenv(rest.split())
        elif cmd == "setenv":
            self._uboot_setenv(rest)
        elif cmd == "saveenv":
            keep = {k: v for k, v in self.boot_env.items() if k in ("bootdelay",) or k not in self._default_env("A")}
            self.state.env.update(keep)
            self.state.save()
            self.console("Saving Environment to MMC... Writing to MMC(0)... OK\n")
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

    def _uboot_printenv(self, names: list[str]) -> None:
        for key in sorted(self.boot_env):
            if not names or key in names:
                self.console(f"{key}={self.boot_env[key]}\n")
        for name in names:
            if name not in self.boot_env:
                self.console(f'## Error: "{name}" not defined\n')
        if not names:
            size = sum(len(k) + len(v) + 2 for k, v in self.boot_env.items())
            self.console(f"\nEnvironment size: {size}/65532 bytes\n")

    def _uboot_setenv(self, rest: str) -> None:
        name, _, value = rest.strip().partition(" ")
        if not name:
            self.console("setenv - set environment variables\n\nUsage:\nsetenv name value ...\n")
        elif value:
            self.boot_env[name] = value.strip()
        else:
            self.boot_env.pop(name, None)

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
        fails = self.defects.boot_fails(version) or (self.state.torn and self.state.pending == slot)
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
        shell = Shell(cast("Box", self), transport="console")
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
