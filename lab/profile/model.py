"""The box profile schema: how one model of box is driven, as data (validated with pydantic).

A profile names the model's console (prompts, login, boot markers, shell quirks), how to read
its identity (firmware version, build, serial number, model), its diagnostics, its kernel log,
how to update its firmware, how to reboot, standby and wake it, its death strings, its IR remote
and the features it has. Nothing else in stblab knows a model's commands.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_regex(v: str) -> str:
    try:
        re.compile(v)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc})") from None
    return v


class Login(_Model):
    """Console login: the user, where its password comes from, the prompts that ask for them."""

    user: str = "root"
    #: environment variable holding the password (never the password itself); None: no password
    password_env: str | None = None
    login_prompt: str = r"login: ?$"
    password_prompt: str = r"[Pp]assword: ?$"
    refused: str = r"Login incorrect|Authentication failure|Permission denied"

    @field_validator("login_prompt", "password_prompt", "refused")
    @classmethod
    def _regexes(cls, v: str) -> str:
        return _check_regex(v)


class BootMarkers(_Model):
    """Lines that tell where a boot is: the bootloader's countdown and prompt, the kernel starting."""

    autoboot: str = r"Hit any key to stop autoboot|Autoboot in \d+ seconds|autoboot in \d+"
    kernel_started: str = r"Starting kernel \.\.\.|Booting Linux|Linux version \d"
    rebooting: str = r"reboot: Restarting|Restarting system|U-Boot \d|Hit any key to stop autoboot"

    @field_validator("autoboot", "kernel_started", "rebooting")
    @classmethod
    def _regexes(cls, v: str) -> str:
        return _check_regex(v)


class Console(_Model):
    """The serial console of this model."""

    prompt: str = r"[#$] $"
    bootloader_prompt: str = r"=> $"
    #: bytes that end a typed line ("\n"; some bootloaders want "\r")
    newline: str = "\n"
    #: seconds between typed characters (for UARTs without flow control that drop bytes)
    char_delay: float = Field(0.0, ge=0)
    login: Login = Login()
    boot: BootMarkers = BootMarkers()
    #: what the shell understands: ``posix`` ($?, $$, exec, sh -c); ``limited`` (a vendor CLI: only
    #: the profile's own commands, no shell syntax beyond ``;`` and ``echo``)
    shell: Literal["posix", "limited"] = "posix"

    @field_validator("prompt", "bootloader_prompt")
    @classmethod
    def _regexes(cls, v: str) -> str:
        return _check_regex(v)


Parser = Literal["text", "json", "key=value", "regex"]


class Probe(_Model):
    """One command and how to read a value (or a document) from its output.

    ``parser``: ``text`` (the stripped output, or its first line with ``first_line``), ``json``
    (``key`` is a dotted path into the document; none: the whole object), ``key=value`` (lines
    ``key=value`` or ``key: value``; ``key`` picks one), ``regex`` (``pattern`` with named
    groups; ``key`` picks one group, default ``value``).
    """

    command: str
    parser: Parser = "text"
    key: str | None = None
    pattern: str | None = None
    first_line: bool = False
    timeout: float = Field(15.0, gt=0)
    #: where to run it: the console, SSH, or whichever the rig has (SSH first)
    via: Literal["console", "ssh", "any"] = "any"

    @model_validator(mode="after")
    def _pattern_for_regex(self) -> Probe:
        if self.parser == "regex":
            if not self.pattern:
                raise ValueError("parser 'regex' needs a 'pattern' with named groups")
            rx = re.compile(_check_regex(self.pattern))
            if not rx.groupindex:
                raise ValueError(f"pattern {self.pattern!r} has no named group (?P<value>...)")
            if (self.key or "value") not in rx.groupindex:
                raise ValueError(f"pattern has no group named {(self.key or 'value')!r}")
        elif self.pattern:
            raise ValueError(f"'pattern' is only for parser 'regex' (parser is {self.parser!r})")
        return self


class Identify(_Model):
    """How the box says who it is: each value read by its own probe (all optional)."""

    firmware_version: Probe | None = None
    build_id: Probe | None = None
    serial_number: Probe | None = None
    model: Probe | None = None
    kernel: Probe | None = None


class Diagnostic(Probe):
    """One part of the diagnostics document: a probe whose result is stored under ``name``."""

    name: str


class FirmwareUpdate(_Model):
    """How a firmware image gets onto the box.

    ``command``: copy the image over SFTP to ``copy_to`` (``{name}`` is the image's file name), then
    run ``command`` (``{file}`` is the copied path) on the console and wait for the reboot.
    ``uboot``: at the bootloader prompt run the ``uboot`` lines (``{file}``, ``{server}``).
    ``none``: the model cannot be flashed by stblab (a gate refuses it).
    """

    method: Literal["command", "uboot", "none"] = "none"
    copy_to: str = "/tmp/{name}"
    command: str | None = None
    uboot: list[str] = []
    #: console text that means the updater refused the image
    refused: str | None = None
    timeout: float = Field(600.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> FirmwareUpdate:
        if self.method == "command" and not self.command:
            raise ValueError("method 'command' needs 'command' (e.g. 'fwupdate {file}')")
        if self.method == "command" and self.command and "{file}" not in self.command:
            raise ValueError("'command' must contain {file} (the image's path on the box)")
        if self.method == "uboot" and not self.uboot:
            raise ValueError("method 'uboot' needs the 'uboot' command lines")
        if self.refused:
            _check_regex(self.refused)
        return self


class PowerCommands(_Model):
    """Shell commands for power states the box handles itself (no PDU needed for these)."""

    reboot: str | None = "reboot"
    standby: str | None = None
    wake: str | None = None


class SshQuirks(_Model):
    """How commands over SSH behave on this model."""

    #: how a timed-out command is ended: an SSH ``signal`` request (OpenSSH, non-root), or
    #: ``process-group`` (the command is started with its process group id and killed with
    #: ``kill -- -PGID`` over a second channel: works for root and on any POSIX shell)
    kill: Literal["signal", "process-group"] = "process-group"


class BoxProfile(_Model):
    """One model's profile (see the module docstring)."""

    model: str
    description: str = ""
    #: another profile this one starts from (its file name without .yaml, in the same folder)
    extends: str | None = None
    console: Console = Console()
    ssh: SshQuirks = SshQuirks()
    identify: Identify = Identify()
    diagnostics: list[Diagnostic] = []
    kernel_log: Probe | None = None
    firmware_update: FirmwareUpdate = FirmwareUpdate()
    power: PowerCommands = PowerCommands()
    #: extra death strings (name -> regex) on top of the console's defaults
    death_strings: dict[str, str] = {}
    #: the IR remote's lircd.conf (relative to the profile file)
    ir_remote: Path | None = None
    #: what this model has (``ssh``, ``ir``, ``hdmi``, ``iptv``, ``standby``...)
    features: list[str] = []
    #: the file this profile came from (set by the loader)
    source: Path | None = Field(None, exclude=True)

    @field_validator("death_strings")
    @classmethod
    def _deaths(cls, v: dict[str, str]) -> dict[str, str]:
        for name, rx in v.items():
            try:
                re.compile(rx)
            except re.error as exc:
                raise ValueError(f"death string {name!r}: not a valid regular expression ({exc})") from None
        return v

    def provenance_keys(self) -> list[str]:
        """The identity values this profile knows how to read."""
        return [k for k in Identify.model_fields if getattr(self.identify, k) is not None]
