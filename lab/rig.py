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
from lab.textsafe import escape_controls

_SERIAL_SCHEMES = {"socket", "rfc2217", "loop", "spy", "hwgrep", "alt"}
# pyserial URLs that reach a TCP peer (the rest name a local device or a test loop).
_SERIAL_TCP = {"socket", "rfc2217"}
# What cv2.VideoCapture (FFmpeg) opens as a network stream, or a local file.
_VIDEO_SCHEMES = {"http", "https", "udp", "rtp", "rtsp", "rtsps", "tcp", "srt", "rtmp", "file"}
_HOST = re.compile(r"^[A-Za-z0-9._-]+$|^\[[0-9A-Fa-f:.]+\]$")
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


def check_host(host: str) -> str:
    """Validate a host name or address (no spaces, no URL pieces). Raises ValueError naming the problem."""
    if not host or not _HOST.match(host) or host.startswith(("-", ".")) or len(host) > 253:
        raise ValueError(f"host {host!r} is not a host name or IP address")
    return host


def check_url_endpoint(url: str, *, need_port: bool = True, need_host: bool = True) -> tuple[str | None, int | None]:
    """Host and port of ``url``, checked: a port in 1-65535, a well-formed host. Raises ValueError.

    ``urlparse`` alone lets ``socket://127.0.0.1:0`` through and raises a bare ValueError on
    ``:99999`` only when ``.port`` is read, far from the rig file; this says which URL is wrong.
    """
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise ValueError("must not contain spaces or control characters")
    p = urlparse(url)
    try:
        port = p.port
    except ValueError:
        raw = p.netloc.rsplit(":", 1)[-1]
        raise ValueError(f"port {raw!r} out of range (1-65535)") from None
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"port {port} out of range (1-65535)")
    if p.netloc.endswith(":"):
        raise ValueError("empty port after ':'")
    host = p.hostname
    if host:
        check_host(host if ":" not in host else f"[{host}]")
    elif need_host:
        raise ValueError("needs a host, e.g. socket://192.0.2.10:2000")
    if need_port and port is None:
        raise ValueError("needs a port, e.g. socket://192.0.2.10:2000")
    return host, port


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
        if v.startswith("/") or ":" not in v:
            return v  # a device path (/dev/ttyUSB0, COM3)
        scheme = urlparse(v).scheme
        if "://" not in v or scheme not in _SERIAL_SCHEMES:
            raise ValueError(
                f"unsupported pyserial URL {v!r} (socket://host:port, rfc2217://host:port, or a device path)"
            )
        if scheme in _SERIAL_TCP:
            check_url_endpoint(v)
        return v


class SshConfig(_Model):
    """SSH: public-key login; host keys verified against ``known_hosts`` unless told otherwise."""

    host: str
    port: int = Field(22, gt=0, lt=65536)
    user: str = "root"
    key: Path
    known_hosts: Path
    passphrase_env: str | None = None

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        check_host(f"[{v.strip('[]')}]" if ":" in v else v)
        return v

    @field_validator("user")
    @classmethod
    def _user(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._][A-Za-z0-9._-]*", v):
            raise ValueError(f"user {v!r} is not a login name")
        return v


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
        check_url_endpoint(v)
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

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        if v.isdigit() or v.startswith(("/", "./", "../")) or "://" not in v:
            return v  # a capture device index or a file
        if served_by_plugin("capture", v):  # a registered capture driver checks its own URLs
            return v
        scheme = urlparse(v).scheme
        if scheme not in _VIDEO_SCHEMES:
            raise ValueError(f"unsupported capture URL scheme '{scheme}' ({', '.join(sorted(_VIDEO_SCHEMES))})")
        if scheme != "file":
            check_url_endpoint(v, need_host=scheme not in {"udp", "rtp"})
        return v


class PowerConfig(_Model):
    """Network PDU (NETIO-style JSON API over HTTP) and the outlet the box hangs on."""

    url: str
    outlet: int = Field(..., gt=0)
    user: str | None = None
    password_env: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if served_by_plugin("power", v):  # a registered power driver checks its own URLs
            return v
        if urlparse(v).scheme not in {"http", "https"}:
            raise ValueError("must be an http:// or https:// URL of the PDU (or a scheme a power driver registered)")
        check_url_endpoint(v, need_port=False)
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


#: A rig file larger than this is refused before it is parsed (a real one is a few kilobytes).
MAX_RIG_FILE_BYTES = 4 * 1024 * 1024


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML keeps the last, silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            dup = key in seen
            seen.add(key)
        except TypeError:  # an unhashable key: the constructor below says so
            continue
        if dup:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, f"key {key!r} given twice", key_node.start_mark
            )
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _fail(message: str) -> RigFileError:
    """A RigFileError whose text is safe to print (control characters from the file made visible)."""
    return RigFileError(escape_controls(message, keep_newlines=False)[:2000])


def read_text_file(path: Path, what: str = "rig file", *, max_bytes: int = MAX_RIG_FILE_BYTES) -> str:
    """The text of a file a user hands in, as UTF-8; RigFileError naming the file and the problem.

    Refuses a missing or unreadable path, a directory, more than ``max_bytes`` and bytes that are
    not UTF-8 (naming the line and the offending bytes), so no caller meets a UnicodeDecodeError.
    """
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise _fail(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise _fail(f"{path}: {what} larger than {max_bytes} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.end].hex(" ")
        raise _fail(f"{path}:{line}: {what} is not UTF-8 text (bytes {bad} at offset {exc.start})") from None


def _parse_yaml(path: Path, text: str) -> Any:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise _fail(f"{path}{where}: not valid YAML: {problem}") from None
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:  # e.g. a date 2026-13-45
        raise _fail(f"{path}: not valid YAML: {type(exc).__name__}: {exc}") from None


def load_rigs(path: str | os.PathLike[str]) -> dict[str, Rig]:
    """Load and validate a rig file; returns rigs by name, in file order.

    Validates everything a job needs before anything is touched, the ``emulate:`` section
    included (with the emulator's own schema). Raises :class:`RigFileError` naming the file, the
    rig, the key and the problem; never another exception for anything the file contains.
    """
    path = Path(path)
    data = _parse_yaml(path, read_text_file(path))
    if not isinstance(data, dict) or "rigs" not in data:
        raise _fail(f"{path}: key 'rigs': missing (a rig file is a mapping with a 'rigs' list)")
    if not isinstance(data["rigs"], list) or not data["rigs"]:
        raise _fail(f"{path}: key 'rigs': must be a non-empty list of rigs")
    unknown = sorted(str(k) for k in data if k != "rigs")
    if unknown:
        raise _fail(f"{path}: key '{unknown[0]}': unknown top-level key (only 'rigs')")
    rigs: dict[str, Rig] = {}
    for index, raw in enumerate(data["rigs"]):
        label = f"rig #{index + 1}"
        if isinstance(raw, dict) and isinstance(raw.get("name"), str):
            label = f"rig '{raw['name'][:100]}'"
        if not isinstance(raw, dict):
            raise _fail(f"{path}: {label}: must be a mapping, got {type(raw).__name__}")
        raw = dict(raw)
        for section in {s for s, _ in _PATH_KEYS} | {"firmware"}:
            if isinstance(raw.get(section), dict):
                raw[section] = dict(raw[section])
        try:
            _resolve_paths(raw, path.resolve().parent)
            rig = Rig.model_validate({**raw, "source": str(path)})
        except ValidationError as exc:
            err = exc.errors()[0]
            key = _key_path(err["loc"]) or "(rig)"
            msg = err["msg"].removeprefix("Value error, ")
            more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
            raise _fail(f"{path}: {label}: key '{key}': {msg}{more}") from None
        except (ValueError, TypeError, RecursionError) as exc:  # e.g. a NUL byte in a path
            raise _fail(f"{path}: {label}: {type(exc).__name__}: {exc}") from None
        if rig.name in rigs:
            raise _fail(f"{path}: {label}: key 'name': duplicate rig name '{rig.name}'")
        if rig.emulate is not None:
            from lab.emulate_schema import parse_settings  # the emulator's schema; imported only when needed

            try:
                parse_settings(rig)
            except RigFileError as exc:
                raise _fail(str(exc)) from None
            except (ValueError, TypeError, RecursionError) as exc:
                raise _fail(f"{path}: {label}: key 'emulate': {type(exc).__name__}: {exc}") from None
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
    "check_host",
    "check_url_endpoint",
    "load_rigs",
    "read_text_file",
    "select_rigs",
]
