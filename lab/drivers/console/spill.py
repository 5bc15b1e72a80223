"""Where a command's console output goes once it outgrows the expect buffer: a file, never lost.

The expect buffer keeps at most ``max_buffer`` characters in memory. While :meth:`run` waits for
its end marker, the text the reader cuts from the buffer's head is the command's output: it is
appended here instead of being dropped, and :meth:`run` puts the file and the buffer's rest back
together. The file lives in the run folder (next to the console log) or in the temp folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class Spill:
    """An append-only text file holding the head of one command's output (thread-safe by the console's lock)."""

    def __init__(self, folder: Path | None, tag: str) -> None:
        fd, name = tempfile.mkstemp(prefix=f"stblab-run-{tag}-", suffix=".spill", dir=folder)
        self.path = Path(name)
        self._file = os.fdopen(fd, "w", encoding="utf-8", errors="replace", newline="")
        #: characters written so far
        self.chars = 0

    def write(self, text: str) -> None:
        """Append ``text`` (called by the reader thread, under the console's lock)."""
        self._file.write(text)
        self.chars += len(text)

    def read_and_remove(self) -> str:
        """Everything written, and the file gone."""
        self._file.close()
        try:
            # newline="": a "\r" at the end of the file is the first half of a "\r\n" cut in two,
            # not a line end to translate (universal newlines would add a character)
            with self.path.open(encoding="utf-8", errors="replace", newline="") as fh:
                return fh.read()
        finally:
            self.path.unlink(missing_ok=True)

    def discard(self) -> None:
        """Close and remove the file (the command failed; the console log keeps the evidence)."""
        self._file.close()
        self.path.unlink(missing_ok=True)
