"""Power and UART of the emulated box: console output, power events, reading keystrokes."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable

from lab.emulator.box.base import BoxBase
from lab.emulator.shell import Cancelled

log = logging.getLogger("stblab.emulator.box")


class PowerMixin(BoxBase):
    """Power and UART of the emulated box: console output, power events, reading keystrokes.

    A mixin of :class:`~lab.emulator.box.Box`; the state lives on the box.
    """

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


class _PowerLost(Exception):
    """The boot/console thread's generation ended (power off, reboot)."""
