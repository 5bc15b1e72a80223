"""The console log: every byte a box printed, in order, kept across reconnects.

The log is the source of truth for a run (DESIGN.md): it keeps the raw bytes exactly as they came
off the wire (non-UTF-8 garbage included), and stblab's own notes (connection opened, lost,
reconnected) as marker lines starting with ``--- stblab:``. Offsets into the log are what
:meth:`ConsoleLog.mark` returns, so evidence can be cut out of it later with
:meth:`ConsoleLog.since`. Without a file the log lives in memory only (the last ``keep_bytes``).

Example::

    log = ConsoleLog("reports/run1/stb-a.console.log")
    log.open()
    start = log.mark()
    log.append(b"[    1.234] Booting Linux\\r\\n")
    log.note("console connection lost: socket disconnected")
    print(log.since(start))
    log.close()
"""

from __future__ import annotations

import datetime as _dt
import io
import os
import threading
from pathlib import Path

MARKER_PREFIX = "--- stblab: "


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def to_text(data: bytes) -> str:
    """Decode console bytes for people: UTF-8 with undecodable bytes shown as U+FFFD."""
    return data.decode("utf-8", errors="replace")


class ConsoleLog:
    """Append-only raw console log (a file and an in-memory window of its end).

    Thread-safe: the console's reader thread appends while tests read marks and tails.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, keep_bytes: int = 4 * 1024 * 1024) -> None:
        self.path: Path | None = Path(path) if path is not None else None
        self._keep = keep_bytes
        self._lock = threading.Lock()
        self._file: io.FileIO | None = None
        self._mem = bytearray()
        self._mem_start = 0  # log offset of self._mem[0]
        self._size = 0  # log offset of the next byte

    @property
    def is_open(self) -> bool:
        return self._file is not None or self.path is None

    def open(self) -> None:
        """Open (or reopen) the file for appending; existing content is kept, offsets continue after it."""
        with self._lock:
            if self.path is None or self._file is not None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 - kept open for the session
            size = self._file.seek(0, os.SEEK_END)
            if size != self._size:
                self._size = size
                self._mem = bytearray()
                self._mem_start = size

    def close(self) -> None:
        """Close the file (the in-memory window stays readable)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def append(self, data: bytes) -> int:
        """Append raw bytes as received; returns the log offset they start at."""
        with self._lock:
            return self._append_locked(data)

    def _append_locked(self, data: bytes) -> int:
        start = self._size
        if self._file is not None:
            self._file.write(data)
        self._mem += data
        self._size += len(data)
        excess = len(self._mem) - self._keep
        if excess > self._keep // 4:
            del self._mem[:excess]
            self._mem_start += excess
        return start

    def note(self, message: str) -> int:
        """Append a marker line (``--- stblab: <UTC time> <message> ---``) on a line of its own."""
        with self._lock:  # one step: box output arriving meanwhile cannot glue onto the marker
            needs_newline = bool(self._mem) and not self._mem.endswith(b"\n")
            line = ("\n" if needs_newline else "") + f"{MARKER_PREFIX}{_now()} {message} ---\n"
            return self._append_locked(line.encode("utf-8", errors="replace"))

    def mark(self) -> int:
        """The current end of the log, to pass to :meth:`since` later."""
        with self._lock:
            return self._size

    def since(self, mark: int, end: int | None = None) -> str:
        """Console text from ``mark`` (a :meth:`mark` value) to ``end`` (default: now), decoded for people."""
        return to_text(self.since_bytes(mark, end))

    def since_bytes(self, mark: int, end: int | None = None) -> bytes:
        """Raw bytes from ``mark`` to ``end``; read back from the file if the memory window moved past it."""
        with self._lock:
            end = self._size if end is None else min(end, self._size)
            mark = max(0, min(mark, end))
            if mark >= self._mem_start:
                return bytes(self._mem[mark - self._mem_start : end - self._mem_start])
            path = self.path
        if path is None:
            with self._lock:
                return bytes(self._mem[: max(0, end - self._mem_start)])
        with open(path, "rb") as f:
            f.seek(mark)
            return f.read(end - mark)

    def tail(self, n: int = 20) -> str:
        """The last ``n`` lines of the log, decoded for people."""
        with self._lock:
            data = bytes(self._mem[-max(4096, n * 512) :])
        lines = to_text(data).replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return "\n".join(lines[-n:])

    def __repr__(self) -> str:
        return f"ConsoleLog({str(self.path) if self.path else None!r}, size={self._size})"


__all__ = ["MARKER_PREFIX", "ConsoleLog", "to_text"]
