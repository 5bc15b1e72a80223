"""SFTP on the emulated box: the writable ``/tmp``, ``/data`` and ``/root`` of its state folder.

A paramiko ``SFTPServerInterface``; anything outside the writable folders is refused with
permission denied, as on a read-only root filesystem.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paramiko
from paramiko.sftp import SFTP_FAILURE, SFTP_NO_SUCH_FILE, SFTP_OK, SFTP_PERMISSION_DENIED

if TYPE_CHECKING:
    from lab.emulator.box import Box

_TOP = ("data", "root", "tmp")


class _Handle(paramiko.SFTPHandle):
    def stat(self) -> Any:
        try:
            return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)

    def chattr(self, attr: Any) -> int:
        return SFTP_OK


class BoxSftp(paramiko.SFTPServerInterface):
    """SFTP subsystem bound to one box (``server.box``)."""

    def __init__(self, server: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(server, *args, **kwargs)
        self.box: Box = server.box

    def _path(self, path: str) -> Path | None:
        return self.box.fs_path(path if path.startswith("/") else "/root/" + path)

    def canonicalize(self, path: str) -> str:
        if not path.startswith("/"):
            path = "/root/" + path
        parts: list[str] = []
        for p in path.split("/"):
            if p in ("", "."):
                continue
            if p == "..":
                if parts:
                    parts.pop()
            else:
                parts.append(p)
        return "/" + "/".join(parts)

    def list_folder(self, path: str) -> Any:
        canon = self.canonicalize(path)
        if canon == "/":
            out = []
            for name in _TOP:
                attr = paramiko.SFTPAttributes.from_stat(os.stat(self._path("/" + name)))  # type: ignore[arg-type]
                attr.filename = name
                out.append(attr)
            return out
        real = self._path(canon)
        if real is None or not real.is_dir():
            return SFTP_NO_SUCH_FILE
        out = []
        for entry in sorted(real.iterdir()):
            attr = paramiko.SFTPAttributes.from_stat(entry.stat())
            attr.filename = entry.name
            out.append(attr)
        return out

    def stat(self, path: str) -> Any:
        canon = self.canonicalize(path)
        real = self._path(canon) if canon != "/" else self.box.state.fs_root
        if real is None or not real.exists():
            return SFTP_NO_SUCH_FILE
        return paramiko.SFTPAttributes.from_stat(real.stat())

    lstat = stat

    def open(self, path: str, flags: int, attr: Any) -> Any:
        real = self._path(self.canonicalize(path))
        if real is None:
            return SFTP_PERMISSION_DENIED
        try:
            fd = os.open(real, flags, 0o644)
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)
        if flags & os.O_WRONLY:
            mode = "ab" if flags & os.O_APPEND else "wb"
        elif flags & os.O_RDWR:
            mode = "a+b" if flags & os.O_APPEND else "r+b"
        else:
            mode = "rb"
        try:
            fobj = os.fdopen(fd, mode)
        except OSError as exc:
            os.close(fd)
            return paramiko.SFTPServer.convert_errno(exc.errno)
        handle = _Handle(flags)
        handle.filename = str(real)
        handle.readfile = fobj
        handle.writefile = fobj
        return handle

    def remove(self, path: str) -> int:
        real = self._path(self.canonicalize(path))
        if real is None:
            return SFTP_PERMISSION_DENIED
        try:
            real.unlink()
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)
        return SFTP_OK

    def rename(self, oldpath: str, newpath: str) -> int:
        old, new = self._path(self.canonicalize(oldpath)), self._path(self.canonicalize(newpath))
        if old is None or new is None:
            return SFTP_PERMISSION_DENIED
        try:
            os.replace(old, new)
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)
        return SFTP_OK

    posix_rename = rename

    def mkdir(self, path: str, attr: Any) -> int:
        real = self._path(self.canonicalize(path))
        if real is None:
            return SFTP_PERMISSION_DENIED
        try:
            real.mkdir()
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)
        return SFTP_OK

    def rmdir(self, path: str) -> int:
        real = self._path(self.canonicalize(path))
        if real is None or real.parent == self.box.state.fs_root:
            return SFTP_PERMISSION_DENIED
        try:
            real.rmdir()
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)
        return SFTP_OK

    def chattr(self, path: str, attr: Any) -> int:
        real = self._path(self.canonicalize(path))
        if real is None:
            return SFTP_PERMISSION_DENIED
        if not real.exists():
            return SFTP_NO_SUCH_FILE
        with contextlib.suppress(OSError):
            if attr.st_mode is not None:
                os.chmod(real, attr.st_mode & 0o7777)
        return SFTP_OK

    def symlink(self, target_path: str, path: str) -> int:
        return SFTP_FAILURE

    def readlink(self, path: str) -> Any:
        return SFTP_NO_SUCH_FILE


__all__ = ["BoxSftp"]
