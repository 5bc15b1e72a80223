"""The ``emulate:`` section of a rig file, validated: everything only the emulator reads.

The schema sits below the rig file loader (:func:`lab.rig.load_rigs` checks an ``emulate:`` section with
it) and the emulator (:mod:`lab.emulator.config` loads the emulated rigs of a file with it).

Example (YAML)::

    emulate:
      seed: 1001
      state_dir: ../.stblab/state/stb-a
      serial_number: SN-A0001
      firmware: {version: 2.0.0, build_id: b2000}
      trusted_keys: [../.stblab/keys/vendor_ed25519.pub]
      hardware_history: {brownouts: 2, tamper: true}
      boot: {bootdelay: 2, kernel_seconds: 0.8}
      defects:
        "2.1.0":
          - {kind: decoder_freeze, after_zaps: 5}

Keys (all optional): ``seed``, ``state_dir``, ``serial_number``, ``hardware_revision``,
``production_lot``, ``hostname``, ``rfc2217_url``, ``itach_url``, ``lirc_url``, ``firmware``
{version, build_id}, ``trusted_keys``, ``hardware_history`` (see :class:`HardwareHistory`),
``defects`` {version: [defect, ...]}, ``console_password_env``, ``resolution`` [w, h], ``fps``,
``boot`` (see :class:`BootTimings`), ``iptv`` (see :class:`IptvSettings`), ``power_on_at_start``,
``pdu_outlets``, ``total_memory_kb``, ``uart_fifo_bytes``, ``strict_baudrate``.

A problem is a :class:`lab.errors.RigFileError` naming the file, the rig, the key and the problem.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lab.errors import RigFileError
from lab.firmware_version import FirmwareVersion

if TYPE_CHECKING:
    from lab.rig import Rig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FirmwareSpec(_Strict):
    """The firmware flashed at the factory (installed in slot A on first start)."""

    version: str = "2.0.0"
    build_id: str | None = None

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        FirmwareVersion(v)
        return v


class HardwareHistory(_Strict):
    """Initial hardware history counters of the emulated device (what diagnostics read)."""

    reboot_reasons: dict[str, int] = {}
    brownouts: int = Field(0, ge=0)
    overvoltage: int = Field(0, ge=0)
    overtemperature: int = Field(0, ge=0)
    hdmi_hotplug: int = Field(0, ge=0)
    edid_failures: int = Field(0, ge=0)
    verified_boot: Literal["ok", "failed", "disabled"] = "ok"
    tamper: bool = False
    max_temperature_c: float = 55.0
    power_on_hours: float = Field(0.0, ge=0)


class BootTimings(_Strict):
    """How long each boot phase takes (seconds). Defaults reach the login prompt in ~3.5 s."""

    bootdelay: int = Field(2, ge=0, le=30)
    countdown_step: float = Field(1.0, gt=0)
    kernel_seconds: float = Field(0.8, ge=0)
    init_seconds: float = Field(0.4, ge=0)
    # Mean seconds between unsolicited kernel messages on a running box (0 = none).
    kmsg_interval: float = Field(25.0, ge=0)
    watchdog_seconds: float = Field(1.0, ge=0)
    # How long fwupdate takes to write an image to the inactive slot; a power cut in that window
    # interrupts the write (the old slot keeps booting, unless the image's update is torn_update).
    flash_seconds: float = Field(0.0, ge=0, le=120)


class DecoderFreeze(_Strict):
    """The live picture stops moving after ``after_zaps`` channel changes (until reboot)."""

    kind: Literal["decoder_freeze"]
    after_zaps: int = Field(5, ge=1)


class BlackAfterResume(_Strict):
    """Resuming from standby leaves the HDMI output black with probability ``probability``."""

    kind: Literal["black_after_resume"]
    probability: float = Field(0.5, ge=0, le=1)


class KernelPanic(_Strict):
    """The kernel oopses and panics after this IR key sequence; the watchdog reboots the box."""

    kind: Literal["kernel_panic"]
    key_sequence: list[str] = Field(..., min_length=1)


class MemoryLeak(_Strict):
    """Each zap leaks ``kb_per_zap`` kB (and ``kb_per_second`` over time); OOM kill then reboot."""

    kind: Literal["memory_leak"]
    kb_per_zap: int = Field(20000, ge=0)
    kb_per_second: int = Field(0, ge=0)


class SshdDies(_Strict):
    """The SSH daemon crashes ``after_seconds`` after boot and stays dead until reboot."""

    kind: Literal["sshd_dies"]
    after_seconds: float = Field(20.0, ge=0)


class BootFail(_Strict):
    """This firmware never finishes booting (kernel panic during init); A/B falls back."""

    kind: Literal["boot_fail"]


class KeyWindow(_Strict):
    """A rare fault that needs a sequence (a fixture for ``stblab explore``, not a real box's bug).

    When the last ``len(keys)`` IR keys are ``keys`` and were pressed within ``within`` seconds of
    each other (first to last), then with ``probability`` the ``effect`` happens: ``freeze`` (the
    live picture stops), ``black`` (HDMI output off until the next boot) or ``panic`` (kernel oops,
    panic, watchdog reboot). Example: a key during the banner's fade after two fast zaps::

        {kind: key_window, keys: [KEY_CHANNELUP, KEY_CHANNELUP, KEY_INFO], within: 1.5, effect: freeze}
    """

    kind: Literal["key_window"]
    keys: list[str] = Field(..., min_length=2, max_length=16)
    within: float = Field(1.0, gt=0, le=60)
    probability: float = Field(1.0, ge=0, le=1)
    effect: Literal["freeze", "black", "panic"] = "freeze"


class PowerStorm(_Strict):
    """A rare fault after power events (a fixture for ``stblab explore``): ``cuts`` power cuts in a
    row, each during a boot (before the login prompt), corrupt the boot environment: the next boot
    comes up with its HDMI output black until a boot completes without a cut before it."""

    kind: Literal["power_storm"]
    cuts: int = Field(3, ge=1, le=100)


class TornUpdate(_Strict):
    """Installing this firmware is not power-safe (a fixture for the update-robustness scenario):
    a power cut while its image is written leaves the half-written slot marked for trial boot and
    a boot environment whose boot counter resets at every boot, so the A/B fallback never happens
    and the box boot-loops (bricked). Needs ``boot.flash_seconds`` > 0 to have a window."""

    kind: Literal["torn_update"]


class HogSensitive(_Strict):
    """The UI app cannot live beside a memory-hungry third-party app (a fixture for the
    third-party-software scenario): while a memory hog (the shell's ``hog mem MB``) of at least
    ``above_mb`` runs, the UI app's next allocation fails, it segfaults and the supervisor reboots
    the box."""

    kind: Literal["hog_sensitive"]
    above_mb: int = Field(128, ge=1)


class IptvSettings(_Strict):
    """Live TV from the emulated headend over multicast (lab.emulator.iptv) instead of the synthetic picture.

    ``namespace``: the box's network namespace; ``"rig"`` = the rig's ``network.namespace``,
    null = this namespace (loopback-only rigs).
    """

    channel_map: Path | None = None
    namespace: str | None = "rig"
    interface_ip: str = "0.0.0.0"
    no_signal_after: float = Field(1.5, gt=0)


Defect = Annotated[
    DecoderFreeze
    | BlackAfterResume
    | KernelPanic
    | MemoryLeak
    | SshdDies
    | BootFail
    | KeyWindow
    | PowerStorm
    | TornUpdate
    | HogSensitive,
    Field(discriminator="kind"),
]


class EmulateSettings(_Strict):
    """The validated ``emulate:`` section of one rig."""

    seed: int = 0
    state_dir: Path | None = None
    serial_number: str = "SN-EMU0001"
    hardware_revision: str = "A1"
    production_lot: str = "L0000-00"
    hostname: str | None = None
    rfc2217_url: str | None = None
    itach_url: str | None = None
    lirc_url: str | None = None
    firmware: FirmwareSpec = FirmwareSpec()
    trusted_keys: list[Path] = []
    hardware_history: HardwareHistory = HardwareHistory()
    defects: dict[str, list[Defect]] = {}
    # Faults of this unit's hardware (a damaged HDMI transmitter, a failing board): active on every
    # firmware version, unlike the catalogue above. Returned units in warranty rigs use these.
    hardware_faults: list[Defect] = []
    console_password_env: str | None = None
    resolution: tuple[int, int] | None = None
    fps: float | None = Field(None, gt=0, le=60)
    boot: BootTimings = BootTimings()
    iptv: IptvSettings | None = None
    power_on_at_start: bool = False
    # UART realism (off by default): bytes beyond this many in one burst are lost, as a UART with
    # a small FIFO drops a fast paste (0 = never); and an RFC 2217 client at another line speed
    # than serial.baudrate sees garbage.
    uart_fifo_bytes: int = Field(0, ge=0)
    strict_baudrate: bool = False
    pdu_outlets: int = Field(4, ge=1, le=16)
    total_memory_kb: int = Field(1_015_808, ge=65536)

    @field_validator("defects", mode="before")
    @classmethod
    def _versions(cls, v: Any) -> Any:
        if isinstance(v, dict):
            for key in v:
                FirmwareVersion(str(key))
            return {str(k): (val or []) for k, val in v.items()}
        return v

    @field_validator("rfc2217_url", "itach_url", "lirc_url")
    @classmethod
    def _hostport(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("/"):
            from urllib.parse import urlparse

            p = urlparse(v)
            if not p.hostname or not p.port:
                raise ValueError(f"needs host and port: {v!r}")
        return v

    def defects_for(self, version: str) -> list[Any]:
        """Defects active on firmware ``version``: its catalogue entries plus the unit's hardware faults."""
        fv = FirmwareVersion(version)
        catalogue = [d for key, items in self.defects.items() if FirmwareVersion(key) == fv for d in items]
        return catalogue + list(self.hardware_faults)

    def password(self) -> str | None:
        """The console password, from the environment variable the rig names (never inline)."""
        return os.environ.get(self.console_password_env) if self.console_password_env else None


_PATHS = ("state_dir",)


def parse_settings(rig: Rig) -> EmulateSettings:
    """Validate ``rig.emulate``; relative paths were already resolved by :func:`lab.rig.load_rigs`.

    Raises RigFileError ``FILE: rig 'NAME': key 'emulate.X': problem``.
    """
    raw = dict(rig.emulate.model_dump()) if rig.emulate is not None else {}
    base = Path(rig.source).resolve().parent if rig.source else Path.cwd()
    iptv = raw.get("iptv")
    if isinstance(iptv, dict) and isinstance(iptv.get("channel_map"), str):
        raw["iptv"] = {**iptv, "channel_map": _resolve(base, iptv["channel_map"])}
    keys = raw.get("trusted_keys")
    if isinstance(keys, list):
        raw["trusted_keys"] = [_resolve(base, k) if isinstance(k, str) else k for k in keys]
    try:
        settings = EmulateSettings.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in ("emulate", *err["loc"]))
        msg = err["msg"].removeprefix("Value error, ")
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise RigFileError(f"{rig.source}: rig '{rig.name}': key '{key}': {msg}{more}") from exc
    if settings.state_dir is None:
        settings = settings.model_copy(update={"state_dir": base / ".stblab" / "state" / rig.name})
    return settings


def _resolve(base: Path, value: str) -> str:
    p = Path(os.path.expanduser(value))
    return os.path.normpath(p if p.is_absolute() else base / p)


__all__ = [
    "BlackAfterResume",
    "BootFail",
    "BootTimings",
    "DecoderFreeze",
    "EmulateSettings",
    "FirmwareSpec",
    "HardwareHistory",
    "HogSensitive",
    "IptvSettings",
    "KernelPanic",
    "KeyWindow",
    "MemoryLeak",
    "PowerStorm",
    "SshdDies",
    "TornUpdate",
    "parse_settings",
]
