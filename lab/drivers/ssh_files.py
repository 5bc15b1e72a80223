"""SFTP transfers checked by sha256 on both sides: part of :class:`lab.drivers.ssh.SshClient`."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko

from lab.errors import DeviceFault, TestError
from lab.steps import step

if TYPE_CHECKING:
    pass
from lab.drivers.ssh_keys import INSTRUMENT, SshBase, _why


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FilesMixin(SshBase):
    """``put``/``get`` over SFTP and the box's sha256 of a file."""

    def _sftp_client(self) -> paramiko.SFTPClient:
        transport = self._live()
        if self._sftp is None:
            try:
                self._sftp = paramiko.SFTPClient.from_transport(transport)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise self._infra(f"cannot open SFTP: {_why(exc)}") from None
            if self._sftp is None:
                raise self._infra("cannot open SFTP")
            self._sftp.get_channel().settimeout(self.io_timeout)  # a box that stops answering must not hang us
        return self._sftp

    def remote_sha256(self, remote: str, timeout: float = 60.0) -> str:
        """sha256 of a file on the box: its ``sha256sum`` when it has one, else read back over SFTP."""
        if self._has_sha256sum is not False:
            quoted = "'" + remote.replace("'", "'\"'\"'") + "'"
            out, _err, code = self._exec(f"sha256sum {quoted}", timeout)
            first = out.decode("utf-8", "replace").split()
            if code == 0 and first and len(first[0]) == 64:
                self._has_sha256sum = True
                return first[0].lower()
            if code == 127:
                self._has_sha256sum = False
            else:
                self._must_exist(remote)
                raise self._infra(f"sha256sum {remote} failed with exit code {code}")
        h = hashlib.sha256()
        try:
            with self._sftp_client().open(remote, "rb") as f:
                f.prefetch()
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        except FileNotFoundError:
            raise TestError(f"no such file on the box: {remote}") from None
        except OSError as exc:
            raise self._infra(f"cannot read back {remote}: {exc}") from None
        return h.hexdigest()

    def _must_exist(self, remote: str) -> None:
        """TestError when ``remote`` does not exist on the box (a wrong path is the scenario's mistake)."""
        try:
            self._sftp_client().stat(remote)
        except FileNotFoundError:
            raise TestError(f"no such file on the box: {remote}") from None
        except OSError:
            pass

    @step(INSTRUMENT)
    def put(self, local: str | os.PathLike[str], remote: str) -> str:
        """Copy a local file to the box over SFTP and check its sha256 there; returns the sha256."""
        local = Path(local)
        if not local.is_file():
            raise FileNotFoundError(f"no such local file: {local}")
        want = _sha256_file(local)
        try:
            self._sftp_client().put(str(local), remote)
        except (OSError, paramiko.SSHException, EOFError) as exc:
            if not self.connected:
                raise self._infra(f"connection lost while uploading {local.name}") from None
            if isinstance(exc, FileNotFoundError | PermissionError):
                raise TestError(f"cannot upload to {remote} on the box: {exc}") from None
            raise self._infra(f"upload of {local.name} to {remote} failed: {exc}") from None
        got = self.remote_sha256(remote)
        if got != want:
            raise DeviceFault(
                f"{remote} on the box has sha256 {got}, sent {want}",
                rig=self.rig_name,
                symptom="file-corrupted",
            )
        return want

    @step(INSTRUMENT)
    def get(self, remote: str, local: str | os.PathLike[str]) -> str:
        """Copy a file from the box over SFTP, checked against its sha256 on the box; returns the sha256.

        Written to a temporary name first and renamed, so a failed copy never leaves a partial file.
        """
        local = Path(local)
        if not local.parent.is_dir():
            raise FileNotFoundError(f"no such local folder: {local.parent}")
        want = self.remote_sha256(remote)
        tmp = local.with_name(f".{local.name}.part")
        try:
            self._sftp_client().get(remote, str(tmp))
        except (OSError, paramiko.SSHException, EOFError) as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, FileNotFoundError):
                raise TestError(f"no such file on the box: {remote}") from None
            raise self._infra(f"download of {remote} failed: {exc}") from None
        got = _sha256_file(tmp)
        if got != want:
            tmp.unlink(missing_ok=True)
            raise DeviceFault(
                f"{remote} read from the box has sha256 {got}, the box says {want}",
                rig=self.rig_name,
                symptom="file-corrupted",
            )
        tmp.replace(local)
        return got
