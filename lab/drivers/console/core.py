"""Serial console driver: one reader thread, one console log, expect on the live stream.

``SerialConsole`` opens any pyserial URL (``/dev/ttyUSB0``, ``socket://host:port`` as ser2net
serves it, ``rfc2217://host:port``). A reader thread owns the port: every byte goes first to the
console log (raw, garbage included), then into the buffer that :meth:`SerialConsole.expect`
searches. Waiters sleep on a condition variable and are woken by each chunk, so there is no
polling interval between a byte arriving and the match being returned.

Outcomes (lab.errors):

* the box did not print what was expected in time -> :class:`ExpectTimeout`, a ``DeviceFault``
  carrying the last console lines and the log path;
* a death string (kernel panic, Oops, watchdog reset, OOM kill, segfault; configurable) ->
  :class:`ConsoleDeath`, a ``DeviceFault`` with ``symptom`` and an ``excerpt`` (lines before, the
  line, and the call trace after it);
* the console connection itself failed (refused, dropped and not back after bounded retries,
  dropped during a wait) -> ``InfraError(instrument="serial")``: never blamed on the box;
* the caller used a console it had not opened -> ``TestError``.

Death strings are raised **once**: by the call waiting when the line arrives, or, when nobody is
waiting, by the next ``expect``/``run``/``login`` call. Text the box printed before the death line
still matches first. One crash is one incident: further death lines within ``incident_window``
seconds (the panic after the Oops, the watchdog reset after the panic) are recorded but not raised
again. Pass ``check_death=False`` (or use :meth:`SerialConsole.expecting_death`) when a crash is
the point of the test, and :meth:`SerialConsole.clear_deaths` to forget unreported ones between
tests; every event stays in :attr:`SerialConsole.deaths` for evidence.

Example::

    with SerialConsole("socket://127.0.0.1:17001", rig_name="stb-a", log_path="run/stb-a.log") as con:
        con.interrupt_bootloader(timeout=20)
        con.bootloader_run("boot")
        con.login(timeout=30)
        assert con.run("fw version").output.startswith("version=")
"""

from __future__ import annotations

import codecs
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import serial

from lab.drivers.console.ansi import AnsiFilter
from lab.drivers.console.bootloader import AUTOBOOT, KERNEL_STARTED, BootloaderMixin
from lab.drivers.console.expect import ExpectMixin
from lab.drivers.console.port import INSTRUMENT, PortMixin, _redact_url
from lab.drivers.console.reader import ReaderMixin
from lab.drivers.console.shell import LOGIN_INCORRECT, LOGIN_PROMPT, PASSWORD_PROMPT, ShellMixin
from lab.drivers.console.spill import Spill
from lab.drivers.console_death import DEFAULT_DEATH_STRINGS, DeathWatch
from lab.drivers.console_log import ConsoleLog
from lab.errors import InfraError

if TYPE_CHECKING:
    from lab.profile import BoxProfile
    from lab.rig import Rig


class SerialConsole(ShellMixin, BootloaderMixin, ExpectMixin, ReaderMixin, PortMixin):
    """A box's serial console: log, expect, login, run, bootloader (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        rig_name: str | None = None,
        log_path: str | os.PathLike[str] | None = None,
        baudrate: int = 115200,
        death_strings: Mapping[str, str] | Sequence[str] | None = None,
        char_delay: float = 0.0,
        prompt: str = r"[#$] $",
        encoding: str = "utf-8",
        bootloader_prompt: str = r"=> $",
        newline: str = "\n",
        reconnect_delays: Sequence[float] = (0.1, 0.2, 0.4, 0.8, 1.5),
        max_buffer: int = 1024 * 1024,
        login_user: str = "root",
        login_password: str | None = None,
        incident_window: float = 10.0,
        search_window: int = 64 * 1024,
        write_timeout: float = 10.0,
        login_prompt: str = LOGIN_PROMPT,
        password_prompt: str = PASSWORD_PROMPT,
        login_refused: str = LOGIN_INCORRECT,
        autoboot: str = AUTOBOOT,
        kernel_started: str = KERNEL_STARTED,
    ) -> None:
        if char_delay < 0:
            raise ValueError("char_delay must be >= 0")
        if write_timeout <= 0:
            raise ValueError("write_timeout must be > 0")
        self.url = url
        self.rig_name = rig_name
        self.baudrate = baudrate
        self.char_delay = char_delay
        self.prompt = prompt
        self.encoding = encoding
        self.bootloader_prompt = bootloader_prompt
        self.newline = newline
        self.reconnect_delays = tuple(reconnect_delays)
        self.max_buffer = max_buffer
        self.login_user = login_user
        self.login_prompt = login_prompt
        self.password_prompt = password_prompt
        self.login_refused = login_refused
        self.autoboot = autoboot
        self.kernel_started = kernel_started
        self._login_password = login_password
        self.log = ConsoleLog(log_path)
        self._watch = DeathWatch(death_strings, incident_window=incident_window)
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._port: serial.SerialBase | None = None
        self._state = "closed"  # closed | open | reconnecting | dead
        self._dead_reason = ""
        self._drops = 0
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._wake_r = self._wake_w = -1
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._text = ""  # pending (not yet consumed by expect) console text
        self._text_base = 0  # absolute text position of self._text[0]
        self._ansi = AnsiFilter()  # terminal control sequences stay in the log, out of expect
        self._conn_head = bytearray()  # first bytes of the current connection (a server's refusal)
        self._conn_bytes = 0  # bytes received on the current connection
        self._opened_at = 0.0
        #: seconds after open() during which a server's "in use" is retried (our own last connection
        #: may still be closing on the server's side); after it, "in use" is ConsoleBusy
        self.busy_grace = 2.0
        self._spill: Spill | None = None  # where a run() in progress keeps output cut from the buffer
        #: characters cut from the expect buffer's head while no run() was collecting them
        self.dropped_chars = 0
        self._last_rx = 0.0
        self._phase = "unknown"  # bootloader | linux from the last boot marker seen; booting after new_incident()
        #: bytes received from the box since the console was created (0: never heard from it)
        self.received_bytes = 0
        self.search_window = search_window
        #: seconds a write may block (a stalled ser2net, a UART held by flow control) before InfraError;
        #: tty and socket:// ports (pyserial's rfc2217:// cannot time out a write)
        self.write_timeout = write_timeout

    # -- construction from a rig -------------------------------------------------------------

    @classmethod
    def from_rig(
        cls,
        rig: Rig,
        *,
        log_path: str | os.PathLike[str] | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        profile: BoxProfile | None = None,
    ) -> SerialConsole:
        """The console of ``rig`` (its ``serial:`` section); log at ``log_path`` or ``run_dir/<rig>.console.log``.

        ``profile`` (the model's box profile) gives prompts, login prompts, boot markers, newline
        and extra death strings; what the rig file sets explicitly wins over the profile.
        """
        cfg = rig.serial
        if cfg is None:
            raise InfraError("rig has no serial section", rig=rig.name, instrument=INSTRUMENT)
        if log_path is None and run_dir is not None:
            log_path = Path(run_dir) / f"{rig.name}.console.log"
        kwargs: dict[str, Any] = {}
        death_strings: Any = cfg.death_strings
        prompt, bootloader_prompt, char_delay = cfg.prompt, cfg.bootloader_prompt, cfg.char_delay
        user = cfg.login.user
        password = cfg.login.password()
        if profile is not None:
            con, explicit = profile.console, cfg.model_fields_set
            prompt = cfg.prompt if "prompt" in explicit else con.prompt
            bootloader_prompt = cfg.bootloader_prompt if "bootloader_prompt" in explicit else con.bootloader_prompt
            char_delay = cfg.char_delay if "char_delay" in explicit else con.char_delay
            if "user" not in cfg.login.model_fields_set:
                user = con.login.user
            if password is None and con.login.password_env:
                password = os.environ.get(con.login.password_env)
            if death_strings is None and profile.death_strings:
                death_strings = {**DEFAULT_DEATH_STRINGS, **profile.death_strings}
            kwargs = {
                "newline": con.newline,
                "login_prompt": con.login.login_prompt,
                "password_prompt": con.login.password_prompt,
                "login_refused": con.login.refused,
                "autoboot": con.boot.autoboot,
                "kernel_started": con.boot.kernel_started,
            }
        return cls(
            cfg.url,
            rig_name=rig.name,
            log_path=log_path,
            baudrate=cfg.baudrate,
            death_strings=death_strings,
            char_delay=char_delay,
            prompt=prompt,
            bootloader_prompt=bootloader_prompt,
            login_user=user,
            login_password=password,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"SerialConsole({_redact_url(self.url)!r}, rig={self.rig_name!r}, state={self._state})"
