"""Local journal of filings the database could not take.

When the RMA database cannot be reached, a filing is appended to a JSON-lines file and fsynced
before ``file()`` returns, so a crash right after loses nothing. :meth:`Journal.replay` files the
entries again (idempotent by occurrence key: replaying twice, or from two processes, stores each
occurrence once) and removes those that made it; the rest wait for the next try.

A torn last line (the machine died mid-write), or an entry that can never be filed (it raises
something other than "database unreachable"), is kept aside in ``<journal>.bad`` with the reason,
so it cannot block the entries behind it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class Journal:
    """An append-only JSON-lines file guarded by an advisory file lock."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(str(self.path) + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def append(self, entry: dict[str, Any]) -> None:
        """Append one entry and fsync it (and the folder, the first time)."""
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._locked():
            new = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = "\n" + line  # a torn last line (died mid-write) must not swallow this entry
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            if new:
                dfd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)

    def _read(self) -> tuple[list[dict[str, Any]], list[bytes]]:
        """Readable entries, and the lines that are not (kept byte for byte, so nothing is lost)."""
        if not self.path.exists():
            return [], []
        good: list[dict[str, Any]] = []
        bad: list[bytes] = []
        for raw in self.path.read_bytes().splitlines():
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                bad.append(raw)
                continue
            if isinstance(entry, dict):
                good.append(entry)
            else:
                bad.append(raw)
        return good, bad

    def entries(self) -> list[dict[str, Any]]:
        """The entries waiting (readable ones)."""
        with self._locked():
            return self._read()[0]

    def __len__(self) -> int:
        return len(self.entries())

    def replay(self, file_one: Callable[[dict[str, Any]], bool]) -> tuple[int, int]:
        """Call ``file_one(entry)`` for each entry in order; keep those it returns False for or that raise.

        Returns (done, left). Holds the journal lock so concurrent appends wait and nothing is lost.
        """
        with self._locked():
            entries, bad = self._read()
            left: list[dict[str, Any]] = []
            done = 0
            failed = False
            for entry in entries:
                if failed:
                    left.append(entry)
                    continue
                try:
                    ok = file_one(entry)
                except Exception as exc:  # an entry that can never be filed must not block the rest
                    why = {"error": f"{type(exc).__name__}: {exc}"[:2000], "entry": entry}
                    bad.append(json.dumps(why, default=str).encode())
                    continue
                if ok:
                    done += 1
                else:
                    left.append(entry)
                    failed = True  # the database went away again: keep the rest in order
            if bad:
                with open(str(self.path) + ".bad", "ab") as f:
                    f.write(b"\n".join(bad) + b"\n")
                    f.flush()
                    os.fsync(f.fileno())
            if not entries and not bad:
                return 0, 0
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                for entry in left:
                    f.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            return done, len(left)
