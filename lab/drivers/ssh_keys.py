"""SSH host keys and the lab key: fingerprints, known_hosts lookup, trust-on-request, verification.

Part of :class:`lab.drivers.ssh.SshClient` (see :mod:`lab.drivers.ssh` for the rules).
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko

from lab.errors import InfraError

if TYPE_CHECKING:
    pass

INSTRUMENT = "ssh"


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style fingerprint of a public key: ``SHA256:<base64 without padding>``."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _why(exc: BaseException) -> str:
    """An exception as text for an error message (its type when it has no message, e.g. EOFError)."""
    return str(exc) or type(exc).__name__


def _host_id(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


class HostKeyError(InfraError):
    """The box's host key is unknown or differs from the one in known_hosts."""

    def __init__(self, message: str, *, rig: str | None, offered: str, known: list[str]) -> None:
        self.offered = offered
        self.known = known
        super().__init__(message, rig=rig, instrument=INSTRUMENT)


class SshBase:
    """The state the SSH client's halves share (set by :class:`~lab.drivers.ssh.SshClient`)."""

    host: str
    port: int
    user: str
    key_path: Path
    known_hosts: Path
    rig_name: str | None
    trust_new_key: bool
    io_timeout: float
    _passphrase: str | None
    _pkey: paramiko.PKey | None
    _transport: paramiko.Transport | None
    _sftp: paramiko.SFTPClient | None
    _has_sha256sum: bool | None

    def _infra(self, message: str) -> InfraError:
        return InfraError(f"{self.user}@{self.host}:{self.port}: {message}", rig=self.rig_name, instrument=INSTRUMENT)

    if TYPE_CHECKING:

        @property
        def connected(self) -> bool: ...

        def _live(self) -> paramiko.Transport: ...

        def _exec(self, cmd: str, timeout: float) -> tuple[bytes, bytes, int]: ...


class HostKeysMixin(SshBase):
    """The lab key and the box's host key."""

    def _load_key(self) -> paramiko.PKey:
        if self._pkey is None:
            try:
                self._pkey = paramiko.PKey.from_path(
                    self.key_path, password=self._passphrase.encode() if self._passphrase is not None else None
                )
            except FileNotFoundError:
                raise self._infra(f"lab key file {self.key_path} does not exist") from None
            except (paramiko.PasswordRequiredException, TypeError) as exc:
                if self._passphrase is None:
                    raise self._infra("lab key is encrypted and no passphrase is configured") from None
                raise self._infra(f"cannot load lab key {self.key_path}: {type(exc).__name__}") from None
            except (paramiko.SSHException, ValueError, OSError) as exc:
                raise self._infra(f"cannot load lab key {self.key_path}: {type(exc).__name__}") from None
        return self._pkey

    def _known_keys(self) -> dict[str, paramiko.PKey]:
        hk = paramiko.HostKeys()
        if self.known_hosts.exists():
            try:
                hk.load(str(self.known_hosts))
            except (OSError, paramiko.SSHException) as exc:
                raise self._infra(f"cannot read known_hosts {self.known_hosts}: {exc}") from None
        entry = hk.lookup(_host_id(self.host, self.port))
        return dict(entry) if entry else {}

    def _trust(self, key: paramiko.PKey) -> None:
        line = f"{_host_id(self.host, self.port)} {key.get_name()} {key.get_base64()}\n"
        try:
            self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
            prefix = ""
            if self.known_hosts.exists() and self.known_hosts.stat().st_size:
                with open(self.known_hosts, "rb") as f:
                    f.seek(-1, os.SEEK_END)
                    prefix = "" if f.read(1) == b"\n" else "\n"
            with open(self.known_hosts, "a", encoding="utf-8") as f:
                f.write(prefix + line)
        except OSError as exc:
            raise self._infra(f"cannot add the host key to {self.known_hosts}: {exc.strerror or exc}") from None

    def _verify_host_key(self, key: paramiko.PKey) -> None:
        known = self._known_keys()
        offered = fingerprint(key)
        if not known:
            if self.trust_new_key:
                self._trust(key)
                return
            raise HostKeyError(
                f"host key of {_host_id(self.host, self.port)} is not in {self.known_hosts} "
                f"(offered {key.get_name()} {offered}); add it or connect once with trust_new_key=True",
                rig=self.rig_name,
                offered=offered,
                known=[],
            )
        same_type = known.get(key.get_name())
        if same_type is not None and same_type.asbytes() == key.asbytes():
            return
        known_fps = [f"{k.get_name()} {fingerprint(k)}" for k in known.values()]
        raise HostKeyError(
            f"HOST KEY MISMATCH for {_host_id(self.host, self.port)}: the box offered {key.get_name()} {offered}, "
            f"known_hosts {self.known_hosts} has {', '.join(known_fps)}. Not connecting; if the box was "
            f"re-provisioned on purpose, remove the old entry.",
            rig=self.rig_name,
            offered=offered,
            known=[fingerprint(k) for k in known.values()],
        )
