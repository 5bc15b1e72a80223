"""The console's reader thread: every byte to the log first, then to the expect buffer."""

from __future__ import annotations

import select
import time

import serial

from lab.drivers.console.base import ConsoleBase
from lab.drivers.console.port import busy_reason

_BOOTLOADER_MARKS = ("U-Boot ", "autoboot", "Autoboot")
_LINUX_MARKS = ("Starting kernel", "Booting Linux", "Linux version", "login: ", "# ", "$ ", "] ")


def _boot_phase(text: str) -> str | None:
    """Where the box is by the last boot marker in ``text``: ``bootloader``, ``linux`` or None.

    Plain ``rfind`` (C speed): it runs on every chunk the console receives.
    """
    bl = max(text.rfind(m) for m in _BOOTLOADER_MARKS)
    lx = max(text.rfind(m) for m in _LINUX_MARKS)
    if bl < 0 and lx < 0:
        return None
    return "bootloader" if bl > lx else "linux"


class ReaderMixin(ConsoleBase):
    """Reader-thread half of :class:`lab.drivers.console.SerialConsole`."""

    # -- reader thread -------------------------------------------------------------------------

    def _read_some(self, port: serial.SerialBase) -> bytes:
        fd = self._fd_of(port)
        if fd is None:  # rfc2217://, loop:// ...: pyserial's own timeout-based read
            data = port.read(1)
            if data and port.in_waiting:
                data += port.read(port.in_waiting)
            return data
        ready, _, _ = select.select([fd, self._wake_r], [], [], 1.0)
        if fd not in ready:
            return b""
        data = port.read(65536)
        if not data:
            # readable but nothing read: a socket at EOF raises in pyserial; a tty may return b""
            raise serial.SerialException("port readable but returned no data (device gone?)")
        return data

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            port = self._port
            if port is None:
                return
            try:
                data = self._read_some(port)
            except Exception as exc:  # pyserial raises SerialException, OSError, TypeError on close
                if self._stop.is_set():
                    return
                busy = busy_reason(bytes(self._conn_head))
                if busy is not None and time.monotonic() - self._opened_at >= self.busy_grace:
                    # ser2net turned us away for longer than a previous client takes to leave:
                    # someone else has the console, and reconnecting would only be turned away again
                    self._connection_lost(busy)
                    self._give_up(busy)
                    return
                if busy is not None:  # turned away right after opening: our last connection may linger
                    # the refusal is the server's text, not the box's: it must not count as "heard
                    # from the box", or login() never nudges a box idling at a prompt after the retry
                    self.received_bytes -= self._conn_bytes
                    self._connection_lost(busy, count=False)
                else:
                    self._connection_lost(str(exc) or type(exc).__name__)
                if not self._reconnect():
                    return
                continue
            if data:
                try:
                    self._feed(data)
                except Exception as exc:  # e.g. the log's disk is full: the lab failed, not the box
                    with self._cond:
                        self._state = "dead"
                        self._dead_reason = f"console reader failed: {type(exc).__name__}: {exc}"
                        self._cond.notify_all()
                    return

    def _feed(self, data: bytes) -> None:
        offset = self.log.append(data)
        self.received_bytes += len(data)
        self._conn_bytes += len(data)
        if len(self._conn_head) < 512:
            self._conn_head += data[: 512 - len(self._conn_head)]
        text = self._ansi.feed(self._decoder.decode(data))
        if not text:
            return
        with self._cond:
            self._last_rx = time.monotonic()
            start_abs = self._text_base + len(self._text)
            self._text += text
            if len(self._text) > self.max_buffer:
                cut = len(self._text) - self.max_buffer
                if self._spill is not None:  # a run() is collecting this text: to its file, not dropped
                    self._spill.write(self._text[:cut])
                else:
                    self.dropped_chars += cut
                self._text = self._text[cut:]
                self._text_base += cut
            self._watch.feed(text, start_abs, offset)
            phase = _boot_phase(text)
            if phase:
                self._phase = phase
            self._cond.notify_all()
