"""Rig files: where each instrument of a rig is reached.

A rig file (``rigs/*.yaml``) lists rigs; each names its box model and one section per
instrument, each reached by a URL that the ordinary tool opens directly. Nothing else in
stblab knows addresses. Relative paths in a rig file are resolved against the file's folder.

Example::

    from lab.rig import load_rigs
    rigs = load_rigs("rigs/emulated.yaml")
    print(rigs["stb-a"].serial.url)   # socket://127.0.0.1:17001

A malformed file raises :class:`lab.errors.RigFileError` naming the file, the rig, the key
and the problem::

    rigs/emulated.yaml: rig 'stb-a': key 'power.outlet': Input should be greater than 0
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lab.errors import RigFileError
from lab.protocols import served_by_plugin

_SERIAL_SCHEMES = {"socket", "rfc2217", "loop", "spy", "hwgrep", "alt"}
_SECRET_KEYS = {"password", "passphrase", "secret", "token", "private_key"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if str(key).lower() in _SECRET_KEYS:
                    raise ValueError(
                        f"inline secret '{key}' is not allowed: name an environment variable "
                        f"('{key}_env') or a file instead"
                    )
        return data


def _resolve_env(name: str | None) -> str | None:
    """Value of the environment variable ``name`` (None when unset or no name)."""
    return os.environ.get(name) if name else None


class Login(_Model):
    """Console login. The password is a reference to an environment variable, never inline."""

    user: str = "root"
    password_env: str | None = None

    def password(self) -> str | None:
        return _resolve_env(self.password_env)


class SerialConfig(_Model):
    """Serial console: any pyserial URL (``/dev/ttyUSB0``, ``socket://h:p``, ``rfc2217://h:p``)."""

    url: str
    baudrate: int = Field(115200, gt=0)
    login: Login = Login()
    prompt: str = r"[#$] $"
    bootloader_prompt: str = r"=> $"
    # Seconds to sleep between characters written, for slow UARTs that drop bytes (0 = none).
    char_delay: float = Field(0.0, ge=0)
    death_strings: list[str] | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        if served_by_plugin("console", v):  # a registered console driver checks its own URLs
            return v
        scheme = urlparse(v).scheme
        if scheme and scheme not in _SERIAL_SCHEMES and not v.startswith("/"):
            raise ValueError(f"unsupported pyserial URL scheme '{scheme}' (socket://, rfc2217://, or a device path)")
        return v


class SshConfig(_Model):
    """SSH: public-key login; host keys verified against ``known_hosts`` unless told otherwise."""

    host: str
    port: int = Field(22, gt=0, lt=65536)
    user: str = "root"
    key: Path
    known_hosts: Path
    passphrase_env: str | None = None


class IrConfig(_Model):
    """IR blaster: ``itach://host:port/module:connector``, ``lirc://host:port`` or a lircd socket path."""

    url: str
    remote: Path
    remote_name: str | None = None
    inter_press_delay: float = Field(0.3, ge=0)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v.startswith("/") or served_by_plugin("remote", v):
            return v
        p = urlparse(v)
        if p.scheme not in {"itach", "lirc"}:
            raise ValueError(f"unsupported IR scheme '{p.scheme}' (itach://, lirc:// or a socket path)")
        if not p.hostname or not p.port:
            raise ValueError("needs host and port, e.g. itach://192.0.2.10:4998/1:1")
        if p.scheme == "itach" and p.path and not re.fullmatch(r"/\d+:\d+", p.path):
            raise ValueError("itach path must be /module:connector, e.g. /1:1")
        return v


class VideoConfig(_Model):
    """HDMI capture: anything ``cv2.VideoCapture`` opens (device index, file, http MJPEG, udp, rtsp)."""

    url: str
    width: int | None = Field(None, gt=0)
    height: int | None = Field(None, gt=0)
    fps: float | None = Field(None, gt=0)
    # Seconds without a frame after which the capture reports "no signal".
    no_signal_after: float = Field(1.0, gt=0)
    ring_seconds: float = Field(10.0, ge=0)


class PowerConfig(_Model):
    """Network PDU (NETIO-style JSON API over HTTP) and the outlet the box hangs on."""

    url: str
    outlet: int = Field(..., gt=0)
    user: str | None = None
    password_env: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if urlparse(v).scheme not in {"http", "https"} and not served_by_plugin("power", v):
            raise ValueError("must be an http:// or https:// URL of the PDU (or a scheme a power driver registered)")
        return v

    def password(self) -> str | None:
        return _resolve_env(self.password_env)


class NetworkConfig(_Model):
    """Where the box sits on the lab network (used by lab.network for namespaces and shaping).

    ``lab_addresses`` are the only destinations generated traffic may go to.
    """

    namespace: str | None = None
    box_address: str | None = None  # e.g. 10.231.1.2/24 inside the namespace
    lab_address: str | None = None  # the lab side of the veth pair
    lab_addresses: list[str] = []
    multicast_groups: list[str] = []

    @field_validator("lab_addresses", "multicast_groups")
    @classmethod
    def _nets(cls, v: list[str]) -> list[str]:
        for item in v:
            ipaddress.ip_network(item, strict=False)
        return v


class FirmwareConfig(_Model):
    """What the lab knows about a rig's firmware: the vendor keys images must be signed with, and
    where the firmware gate uploads an image on the box before installing it."""

    trusted_keys: list[Path] = []
    upload_dir: str = "/data"


class EmulateConfig(BaseModel):
    """Read only by the emulator: seed, state folder, firmware, hardware history, defects.

    Kept open (extra keys allowed) so the emulator owns its own schema; it validates the details.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    seed: int = 0
    state_dir: Path | None = None


class TimeoutsConfig(_Model):
    """Default time limits of jobs on this rig, in seconds (``--test-timeout`` etc. override them)."""

    test: float | None = Field(None, gt=0)
    rig: float | None = Field(None, gt=0)


class Rig(_Model):
    """One rig: a box and the instruments wired to it."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    model: str
    features: list[str] = []
    serial: SerialConfig | None = None
    ssh: SshConfig | None = None
    ir: IrConfig | None = None
    video: VideoConfig | None = None
    power: PowerConfig | None = None
    network: NetworkConfig | None = None
    firmware: FirmwareConfig | None = None
    emulate: EmulateConfig | None = None
    timeouts: TimeoutsConfig | None = None
    source: Path | None = Field(None, exclude=True)

    @property
    def emulated(self) -> bool:
        return self.emulate is not None

    def matches(self, selector: str) -> bool:
        """True when the rig matches ``name`` or ``key=value`` (keys: name, model, feature)."""
        if "=" not in selector:
            return self.name == selector
        key, _, value = selector.partition("=")
        key = key.strip()
        if key == "model":
            return self.model == value
        if key == "name":
            return self.name == value
        if key == "feature":
            return value in self.features
        raise RigFileError(f"unknown rig selector key '{key}' (name=, model=, feature=)")


class RigFile(_Model):
    rigs: list[Rig]


_PATH_KEYS = {("ssh", "key"), ("ssh", "known_hosts"), ("ir", "remote"), ("emulate", "state_dir")}


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    fw = raw.get("firmware")
    if isinstance(fw, dict) and isinstance(fw.get("trusted_keys"), list):
        fw["trusted_keys"] = [
            os.path.normpath(base / os.path.expanduser(k)) if isinstance(k, str) else k for k in fw["trusted_keys"]
        ]
    for section, key in _PATH_KEYS:
        sec = raw.get(section)
        if isinstance(sec, dict) and isinstance(sec.get(key), str):
            p = Path(os.path.expanduser(sec[key]))
            sec[key] = os.path.normpath(p if p.is_absolute() else (base / p))


def _key_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def load_rigs(path: str | os.PathLike[str]) -> dict[str, Rig]:
    """Load and validate a rig file; returns rigs by name, in file order.

    Raises :class:`RigFileError` naming the file, the rig, the key and the problem.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RigFileError(f"{path}: cannot read rig file: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RigFileError(f"{path}{where}: not valid YAML: {problem}") from exc
    if not isinstance(data, dict) or "rigs" not in data:
        raise RigFileError(f"{path}: key 'rigs': missing (a rig file is a mapping with a 'rigs' list)")
    if not isinstance(data["rigs"], list) or not data["rigs"]:
        raise RigFileError(f"{path}: key 'rigs': must be a non-empty list of rigs")
    unknown = set(data) - {"rigs"}
    if unknown:
        raise RigFileError(f"{path}: key '{sorted(unknown)[0]}': unknown top-level key (only 'rigs')")
    rigs: dict[str, Rig] = {}
    for index, raw in enumerate(data["rigs"]):
        label = f"rig #{index + 1}"
        if isinstance(raw, dict) and isinstance(raw.get("name"), str):
            label = f"rig '{raw['name']}'"
        if not isinstance(raw, dict):
            raise RigFileError(f"{path}: {label}: must be a mapping, got {type(raw).__name__}")
        raw = dict(raw)
        for section in {s for s, _ in _PATH_KEYS} | {"firmware"}:
            if isinstance(raw.get(section), dict):
                raw[section] = dict(raw[section])
        _resolve_paths(raw, path.resolve().parent)
        try:
            rig = Rig.model_validate({**raw, "source": str(path)})
        except ValidationError as exc:
            err = exc.errors()[0]
            key = _key_path(err["loc"]) or "(rig)"
            msg = err["msg"].removeprefix("Value error, ")
            more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
            raise RigFileError(f"{path}: {label}: key '{key}': {msg}{more}") from exc
        if rig.name in rigs:
            raise RigFileError(f"{path}: {label}: key 'name': duplicate rig name '{rig.name}'")
        rigs[rig.name] = rig
    return rigs


def select_rigs(rigs: dict[str, Rig], selector: str | None) -> list[Rig]:
    """Rigs matching ``selector`` (a name or ``model=...``/``feature=...``); all when None."""
    if not selector:
        return list(rigs.values())
    chosen = [r for r in rigs.values() if r.matches(selector)]
    if not chosen:
        raise RigFileError(f"no rig matches '{selector}' (have: {', '.join(rigs)})")
    return chosen


__all__ = [
    "EmulateConfig",
    "FirmwareConfig",
    "IrConfig",
    "Login",
    "NetworkConfig",
    "PowerConfig",
    "Rig",
    "SerialConfig",
    "SshConfig",
    "VideoConfig",
    "load_rigs",
    "select_rigs",
]
