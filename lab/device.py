"""The set-top box under test: one rig's drivers behind one object, and the states it moves through.

``Stb`` composes the drivers of a rig (serial console, SSH, IR remote, power switch, HDMI capture)
and moves the box between the states ``off``, ``bootloader`` and ``shell``, labgrid-strategy
style: ask for a state with :meth:`Stb.to` and the box is driven there from wherever it is. Every
transition is a logged step (lab.steps) with its timing.

The console is opened *before* the box is powered and stays open for the whole session; its log
(``<run_dir>/<rig>/console.log``) is the source of truth and death strings seen there raise a
:class:`~lab.errors.DeviceFault` from whatever call is waiting. An instrument failure is an
:class:`~lab.errors.InfraError`: it marks the rig *bad* in the session's :class:`RigHealth` and
every later call on this ``Stb`` errors at once with the original reason.

Example::

    from lab.rig import load_rigs
    from lab.device import Stb

    rig = load_rigs("rigs/emulated.yaml")["stb-a"]
    with Stb(rig, run_dir="reports/manual") as stb:
        stb.to("shell")
        print(stb.firmware_version(), stb.serial_number())
        stb.remote.press("KEY_CHANNELUP")
        stb.reboot()
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from lab.device_health import RigHealth
from lab.device_queries import StbQueries
from lab.device_state import STATES, StbState
from lab.drivers.result import CommandResult
from lab.errors import InfraError, TestError
from lab.protocols import build
from lab.rig import Rig
from lab.steps import step

if TYPE_CHECKING:
    from lab.profile import BoxProfile, Provenance
    from lab.protocols import Capture, Console, Kind, Power, RemoteControl, Shell

P = ParamSpec("P")
R = TypeVar("R")

_NEED_FOR = {"power": "power", "remote": "ir", "capture": "hdmi"}


REBOOTING = r"reboot: Restarting|Restarting system|U-Boot \d|Hit any key to stop autoboot"


def _guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Refuse to touch a bad rig, and mark the rig bad when an instrument fails inside ``fn``."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        self = args[0]
        assert isinstance(self, Stb)
        return self._call_guarded(lambda: fn(*args, **kwargs))

    return wrapper


class Stb(StbQueries):
    """One box and its instruments, from a rig (see module docstring).

    ``run_dir`` receives ``<rig>/console.log`` and evidence. ``health`` is the session's
    :class:`RigHealth` (a private one when omitted). ``boot_timeout`` bounds power-on to login
    prompt; ``trust_new_ssh_key`` explicitly accepts an unknown SSH host key. ``profile`` is the
    model's box profile (default: ``rigs/models/<model>.yaml``, see :mod:`lab.profile`): login,
    prompts, how to read version and serial, how to reboot.

    Every instrument but the console is optional: without a ``power:`` section the box is taken
    as always on (``to("shell")`` logs in to the live console; recovery reboots from the shell).
    """

    def __init__(
        self,
        rig: Rig,
        *,
        run_dir: str | Path,
        health: RigHealth | None = None,
        boot_timeout: float = 60.0,
        trust_new_ssh_key: bool = False,
        profile: BoxProfile | None = None,
    ) -> None:
        self.rig = rig
        self._profile = profile
        self._provenance: Provenance | None = None
        self.rig_name = rig.name
        self.run_dir = Path(run_dir)
        self.dir = self.run_dir / rig.name
        self.health = health or RigHealth()
        self.boot_timeout = boot_timeout
        self.trust_new_ssh_key = trust_new_ssh_key
        self.state = StbState.UNKNOWN
        self.current_test: str | None = None
        # Opened lazily; read them through the properties below (console_if_open and
        # capture_if_running tell what is open without opening anything).
        self._console: Console | None = None
        self._ssh: Shell | None = None
        self._remote: RemoteControl | None = None
        self._power: Power | None = None
        self._capture: Capture | None = None
        self._info: dict[str, str] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Stb:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @_guarded
    def open(self) -> Stb:
        """Open the console (and its log) before anything powers the box. Idempotent."""
        if self._console is None:
            if self.rig.serial is None:
                raise TestError(f"rig {self.rig_name} has no serial console in its rig file")
            self.dir.mkdir(parents=True, exist_ok=True)
            profile = self._profile_or_none()
            extra: dict[str, Any] = {"profile": profile} if profile is not None else {}
            console: Console = build("console", self.rig, log_path=self.console_log_path, **extra)
            console.open()
            self._console = console
        return self

    def close(self) -> None:
        """Close every driver that was opened (the console last, so its log sees everything)."""
        for name in ("_capture", "_ssh", "_remote", "_power", "_console"):
            drv: Any = getattr(self, name)
            setattr(self, name, None)
            if drv is None:
                continue
            closer = getattr(drv, "close", None) or getattr(drv, "stop", None)
            if closer is not None:
                with contextlib.suppress(Exception):  # closing must not hide the test's outcome
                    closer()

    @property
    def console_log_path(self) -> Path:
        """Where this rig's console log is written."""
        return self.dir / "console.log"

    @property
    def profile(self) -> BoxProfile:
        """The model's box profile (loaded on first use; a missing or bad one is a ``ProfileError``)."""
        if self._profile is None:
            from lab.profile import profile_for_rig

            self._profile = profile_for_rig(self.rig)
        return self._profile

    def _profile_or_none(self) -> BoxProfile | None:
        """The profile, or None when the model has none (the console then uses its own defaults)."""
        from lab.profile import ProfileError

        try:
            return self.profile
        except ProfileError as exc:
            if "no box profile" not in str(exc):
                raise  # a profile that exists but is malformed is an error, never skipped over
            return None

    def has(self, instrument: str) -> bool:
        """Does this rig have ``instrument`` (``power``, ``ir``, ``video``, ``ssh``, ``serial``, ``network``)?"""
        return getattr(self.rig, instrument, None) is not None

    # -- instruments ---------------------------------------------------------------------------

    @property
    def console(self) -> Console:
        """The serial console (opened on first use, kept for the session)."""
        if self._console is None:
            self.open()
        assert self._console is not None
        return self._console

    @property
    def console_if_open(self) -> Console | None:
        """The console when it is open, else None (for evidence: never opens one)."""
        return self._console

    @property
    def power(self) -> Power:
        """The network PDU outlet of this box."""
        if self._power is None:
            self._power = self._make("power")
        return self._power

    @property
    def remote(self) -> RemoteControl:
        """The IR remote (blaster) pointed at this box."""
        if self._remote is None:
            self._remote = self._make("remote")
        return self._remote

    @property
    def capture(self) -> Capture:
        """The HDMI capture, started on first use and kept running (its ring buffer feeds clips)."""
        if self._capture is None:
            cap: Capture = self._make("capture")
            self._call_guarded(cap.start)
            self._capture = cap
        return self._capture

    @property
    def capture_if_running(self) -> Capture | None:
        """The capture when it was started, else None (for evidence: never starts one)."""
        return self._capture

    @property
    def ssh(self) -> Shell:
        """SSH to the box, connected lazily; host key verified against the rig's known_hosts."""
        if self._ssh is None:
            cfg = self.rig.ssh
            if cfg is None:
                raise TestError(f"rig {self.rig_name} has no ssh section in its rig file")
            from lab.drivers.ssh import SshClient

            client = SshClient(
                cfg.host,
                cfg.port,
                cfg.user,
                cfg.key,
                cfg.known_hosts,
                rig_name=self.rig_name,
                trust_new_key=self.trust_new_ssh_key,
            )
            profile = self._profile_or_none()
            if profile is not None:
                client.kill_mode = profile.ssh.kill
            self._call_guarded(lambda: client.connect(timeout=15))
            self._ssh = client
        return self._ssh

    def drop_ssh(self) -> None:
        """Forget the SSH connection (after a reboot or power cycle it is dead)."""
        ssh, self._ssh = self._ssh, None
        if ssh is not None:
            with contextlib.suppress(Exception):
                ssh.close()

    def _make(self, kind: Kind) -> Any:
        """The driver registered for this rig's ``kind`` URL (see :mod:`lab.protocols`)."""
        from lab.protocols import SECTIONS

        section = SECTIONS[kind]
        if getattr(self.rig, section, None) is None:
            raise TestError(
                f"rig {self.rig_name} has no '{section}' section in its rig file; a test that needs it "
                f"declares @pytest.mark.stb(features=[{_NEED_FOR.get(kind, section)!r}]) and is skipped here"
            )
        return self._call_guarded(lambda: build(kind, self.rig))

    def _call_guarded(self, fn: Callable[[], R]) -> R:
        """Run ``fn`` unless the rig is bad; an InfraError inside it marks the rig bad (see :func:`_guarded`)."""
        self.health.check(self.rig_name)
        try:
            return fn()
        except InfraError as exc:
            if exc.rig is None:
                exc.rig = self.rig_name
            self.health.mark_bad(self.rig_name, exc, test=self.current_test)
            raise

    # -- states ----------------------------------------------------------------------------

    @_guarded
    @step("stb")
    def to(self, state: str | StbState) -> None:
        """Drive the box to ``off``, ``bootloader`` or ``shell`` from wherever it is."""
        if state not in STATES:
            raise TestError(f"unknown state {state!r}; known states: {', '.join(STATES)}")
        if state == "off":
            self.power_off()
        elif state == "bootloader":
            self._to_bootloader()
        elif self.state != StbState.SHELL or not self._shell_alive():
            self._to_shell()

    def _to_bootloader(self) -> None:
        if self.state == StbState.BOOTLOADER:
            return
        self.power_off()
        self.console.drain()
        self._new_incident()
        self.power.on()
        self.state = StbState.BOOTING  # powered: if the interrupt fails, the next transition power-cycles
        self.console.interrupt_bootloader(timeout=self.boot_timeout)
        self.state = StbState.BOOTLOADER

    def mark_dirty(self) -> None:
        """The box may be left in a bad state (a test failed on it): the next ``to("shell")``
        power-cycles it instead of reusing the running shell, so each test starts clean, and the
        death strings nobody was told about are forgotten at that power-off (the failed test
        reported what the box printed; the next test must not fail on it)."""
        self.state = StbState.DIRTY

    def _to_shell(self) -> None:
        if self.state == StbState.BOOTLOADER:
            self.console.drain()
            self.console.sendline("boot")
            self._wait_login()
            return
        if not self.has("power"):
            self._to_shell_without_power()
            return
        # Powered already: a live shell or a login prompt avoids a reboot.
        if self.state == StbState.UNKNOWN and self.power.status() and self._shell_alive():
            return
        if self.state != StbState.OFF:
            self.power_off()
        self.power_on()

    def _to_shell_without_power(self) -> None:
        """An always-on box: log in to the live console; a dirty box is rebooted from its shell."""
        from lab.drivers.console import ExpectTimeout

        dirty = self.state == StbState.DIRTY
        if dirty:
            self.console.clear_deaths()  # see mark_dirty
        if self._shell_alive():
            if dirty and self.profile.power.reboot:
                self._soft_reboot()
            return
        try:  # a login prompt under boot chatter, or a box still booting: the console login waits
            self.login(timeout=self.boot_timeout)
        except ExpectTimeout as exc:
            raise InfraError(
                f"rig has no power control and the box does not answer on its console within "
                f"{self.boot_timeout:.0f} s (last console lines: {exc.tail.strip()[-200:]!r})",
                rig=self.rig_name,
                instrument="power",
            ) from None

    def _shell_alive(self) -> bool:
        """True when the console answers a command now (logging in first if it shows login:)."""
        from lab.drivers.console import ExpectTimeout
        from lab.drivers.serial import LOGIN_PROMPT

        console = self.console
        console.drain()
        console.sendline("")
        try:
            m = console.expect([console.prompt, getattr(console, "login_prompt", LOGIN_PROMPT)], timeout=3)
        except ExpectTimeout:
            return False
        if m.index == 1:
            self.login()
        try:
            ok = bool(console.run("true", timeout=5))
        except ExpectTimeout:
            return False
        if ok:
            self.state = StbState.SHELL
            self.health.mark_good(self.rig_name)
        return ok

    @_guarded
    @step("stb")
    def power_on(self) -> None:
        """Switch the outlet on and wait for the box to boot to a logged-in shell."""
        self.console.drain()
        self._new_incident()
        self.power.on()
        self._wait_login()

    @_guarded
    @step("stb")
    def power_off(self) -> None:
        """Switch the outlet off (console stays open: the log keeps what the box said last)."""
        if self.state == StbState.DIRTY:
            self.console.clear_deaths()  # see mark_dirty
        self.drop_ssh()
        self.power.off()
        self.state = StbState.OFF

    @_guarded
    @step("stb")
    def reboot(self, *, hard: bool = False) -> float:
        """Reboot to a logged-in shell (``reboot`` on the console, or a power cycle when ``hard``).

        Returns the seconds from the request to the shell prompt.
        """
        t0 = time.monotonic()
        self.drop_ssh()
        if not self.has("power") and not hard and self.state != StbState.SHELL:
            self.to("shell")
        if hard or self.state != StbState.SHELL:
            self.power_off()
            self.power_on()
        else:
            self._soft_reboot()
        return time.monotonic() - t0

    def _soft_reboot(self) -> None:
        """The profile's reboot command on the console, then the next boot to a logged-in shell."""
        command = self.profile.power.reboot
        if not command:
            raise TestError(f"profile {self.profile.model!r} has no reboot command and rig {self.rig_name} no PDU")
        self.drop_ssh()
        self.console.drain()
        self._new_incident()
        self.console.sendline(command)
        self.state = StbState.BOOTING
        self.console.expect(self.profile.console.boot.rebooting, timeout=60)
        self._wait_login()

    def _new_incident(self) -> None:
        """A new boot: a crash in it is a new incident, not part of the last boot's crash."""
        self.console.new_incident()

    def _wait_login(self) -> None:
        self.state = StbState.BOOTING
        self.login(timeout=self.boot_timeout)

    @_guarded
    @step("stb")
    def login(self, timeout: float = 30.0) -> None:
        """Log in on the console with the rig's user (password from its environment variable)."""
        cfg = self.rig.serial
        assert cfg is not None
        profile = self._profile_or_none()
        user, password = cfg.login.user, cfg.login.password()
        if profile is not None:
            if "user" not in cfg.login.model_fields_set:
                user = profile.console.login.user
            if password is None and profile.console.login.password_env:
                import os

                password = os.environ.get(profile.console.login.password_env)
        self.console.login(user=user, password=password, timeout=timeout)
        self.state = StbState.SHELL
        self.health.mark_good(self.rig_name)

    # -- queries -----------------------------------------------------------------------------

    @_guarded
    def run(self, cmd: str, timeout: float = 30.0) -> CommandResult:
        """Run ``cmd`` on the console shell (brings the box to the shell first)."""
        if self.state != StbState.SHELL:
            self.to("shell")
        return self.console.run(cmd, timeout=timeout)

    def __repr__(self) -> str:
        return f"Stb({self.rig_name!r}, model={self.rig.model!r}, state={str(self.state)!r})"


__all__ = ["STATES", "RigHealth", "Stb", "StbState"]
