"""Shell on the console: login and framed command runs."""

from __future__ import annotations

import contextlib
import re
import secrets
import time

from lab.drivers.console.base import ConsoleBase
from lab.drivers.console.expect import ExpectTimeout
from lab.drivers.console.port import INSTRUMENT
from lab.drivers.console.spill import Spill
from lab.drivers.result import CommandResult
from lab.errors import InfraError, TestError
from lab.steps import step

_KLINE = r"\[\s*\d+\.\d+\] [^\n]*\n"
KERNEL_LINE = re.compile(r"\[\s*\d+\.\d+\] [^\n]*(?:\n|$)")
LOGIN_PROMPT = r"login: ?$"
PASSWORD_PROMPT = r"[Pp]assword: ?$"
LOGIN_INCORRECT = r"Login incorrect|Authentication failure|Permission denied"
#: seconds the bootloader prompt must sit idle before login() types the boot command
BOOTLOADER_IDLE = 1.0
#: seconds of silence after a power-on or reset (nothing heard yet) before login() nudges with a newline
SILENT_BOOT_NUDGE = 10.0


def clean_output(text: str) -> str:
    """Command output as a program's stdout would be: ``\\n`` line ends, kernel log lines removed.

    Kernel messages (``[   12.345678] ...``) can arrive in the middle of a command's output on a
    real console; they are cut out wherever they start, so a line they interrupted is joined again.
    """
    text = text.replace("\r\n", "\n").replace("\r", "")
    return KERNEL_LINE.sub("", text)


_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_KEY_NAMES = {"\t": "TAB", "\x03": "Ctrl-C", "\x04": "Ctrl-D", "\x15": "Ctrl-U", "\x1b": "ESC", "\x7f": "DEL"}


def refuse_control_bytes(cmd: str) -> None:
    """Raise ``TestError`` when ``cmd`` holds a byte a shell's line editor takes as a key.

    On a real console TAB completes, Ctrl-C interrupts, Ctrl-U erases the line, ESC starts a key
    sequence: typed raw they change the command instead of reaching it. Write them as the
    program expects them (``printf 'a\\tb'``, ``$'\\t'``).
    """
    m = _CONTROL.search(cmd)
    if m is not None:
        ch = m.group(0)
        name = _KEY_NAMES.get(ch, f"control byte 0x{ord(ch):02x}")
        raise TestError(
            f"run() command holds {name} at column {m.start()}: a shell on a console would take it as a "
            f"key, not as text; write it escaped (printf '\\t', $'\\x1b') instead: {cmd!r}"
        )


_COUNTDOWN_LEFT = re.compile(r"[\s\d\x08:=>]*")  # what a stopped countdown prints up to its prompt


def stopped_countdown(before: str, autoboot: str, stopped_before: bool = False) -> bool:
    r"""Whether the bootloader prompt that followed ``before`` is an interrupted countdown's.

    True when the last countdown line in ``before`` is followed only by the countdown's digits,
    backspaces and fresh prompts (a key stopped it); False when anything else was printed (a boot
    command that failed, a command's output). ``before`` without a countdown and with nothing but
    blank lines keeps ``stopped_before`` (another prompt for a key pressed at the same one).

    Example::

        stopped_countdown("Hit any key to stop autoboot:  2 \b\b\b 0 \n", AUTOBOOT)  # True
        stopped_countdown("autoboot:  0\nWrong Image Format for bootm command\n", AUTOBOOT)  # False
    """
    countdowns = list(re.finditer(autoboot, before))
    if not countdowns:
        return stopped_before and not before.strip()
    return _COUNTDOWN_LEFT.fullmatch(before[countdowns[-1].end() :]) is not None


class ShellMixin(ConsoleBase):
    """Shell half of :class:`lab.drivers.console.SerialConsole`."""

    #: what login() types at an idle bootloader prompt to let the box go on booting
    boot_command: str = "boot"

    # -- shell and bootloader ------------------------------------------------------------------

    def _quiet_for(self) -> float:
        with self._cond:
            return time.monotonic() - self._last_rx

    @step(INSTRUMENT)
    def login(self, user: str | None = None, *, password: str | None = None, timeout: float = 30.0) -> None:
        """Log in on the console and wait for the shell prompt (no-op when already at a prompt).

        Waits through a boot in progress; nudges with a newline (backing off) when Linux runs but
        no prompt shows -- never while the bootloader runs, where a newline would stop it, nor
        soon after a power-on or reset (:meth:`new_incident`) that has printed nothing yet. A box
        that sits idle at the bootloader prompt right after its countdown (stopped by line noise
        or a stray key) is told to boot (``boot``, at most three times, each noted in the console
        log); a prompt after a failed boot is left alone, for the timeout to report. A
        refused login or a password prompt without a configured password is an ``InfraError``
        (the lab's credentials are wrong, not the box). ``password`` is keyword-only, so the step
        log always shows it as ``***``.
        """
        user = user or self.login_user
        password = password if password is not None else self._login_password
        deadline = time.monotonic() + timeout
        patterns = [self.login_prompt, self.password_prompt, self.prompt, self.login_refused, self.bootloader_prompt]
        sent_user = sent_password = False
        user_sent_count = 0
        last_nudge, nudge_every = 0.0, 1.0
        at_bootloader, boots_typed, prompt_rx = False, 0, 0.0
        while True:
            remaining = deadline - time.monotonic()
            # at the deadline: one last look, ExpectTimeout (with the tail) only if nothing is there
            m = self._expect(patterns, max(0.0, min(remaining, 0.5)), raise_timeout=remaining <= 0, overall=timeout)
            if m is None:
                quiet = self._quiet_for()
                idle_at_prompt = at_bootloader and self._last_rx == prompt_rx and quiet >= BOOTLOADER_IDLE
                if idle_at_prompt and self._phase == "bootloader" and boots_typed < 3:
                    # its countdown was stopped and it idles at the prompt: nothing will bring a login
                    self.log.note(f"login: the box sits at the bootloader prompt; typing {self.boot_command!r}")
                    self._write(self._encode(self.boot_command + self.newline))
                    at_bootloader, boots_typed = False, boots_typed + 1
                    continue
                # Nudge a box idling at a prompt printed before we looked (or buried under kernel
                # chatter) -- but only once Linux runs: a newline typed while the bootloader runs,
                # even before its countdown shows, can stop the boot. A box we just powered on or
                # reset that printed nothing yet is given much longer: its bootloader may be slow
                # to print on a busy host. Back off each time.
                since_nudge = time.monotonic() - last_nudge
                silent_for = SILENT_BOOT_NUDGE if self._phase == "booting" else 1.0
                never_heard = self.received_bytes == 0 and quiet >= silent_for
                in_linux = self._phase == "linux" and (quiet >= 1.0 or since_nudge >= 2 * nudge_every)
                if since_nudge >= nudge_every and (never_heard or in_linux):
                    self._write(self._encode(self.newline))
                    last_nudge, nudge_every = time.monotonic(), min(nudge_every * 2, 8.0)
                continue
            if m.index == 4:
                # only a countdown stopped by a stray key is booted on; a prompt after a failed
                # boot (bad image, no kernel) is the box's own state: left for the timeout to show
                at_bootloader = stopped_countdown(m.before, self.autoboot, at_bootloader)
                prompt_rx = self._last_rx  # typed only if nothing arrives after this prompt
                continue
            at_bootloader = False
            if m.index == 0:
                if (sent_user and sent_password) or user_sent_count >= 3:
                    raise self._infra(f"console login as {user!r} failed: login prompt came back")
                self._write(self._encode(user + self.newline))
                sent_user, sent_password = True, False
                user_sent_count += 1
            elif m.index == 1:
                if not sent_user:
                    # asked for a password of a user we did not type (a nudge newline, or someone
                    # else's half-done login): Enter cancels it and brings the login prompt back
                    self._write(self._encode(self.newline))
                    continue
                if password is None:
                    raise self._infra(f"console asks a password for {user!r} but none is configured")
                self._write(self._encode(password + self.newline))
                sent_password = True
            elif m.index == 2:
                return
            elif not sent_password:
                continue  # a refusal of an earlier attempt (not ours): wait for the login prompt
            else:
                raise self._infra(f"console login as {user!r} refused: {m.text!r} (check the rig's login settings)")

    @step(INSTRUMENT)
    def run(
        self, cmd: str, timeout: float = 30.0, *, check_death: bool = True, strip_kernel: bool | None = None
    ) -> CommandResult:
        """Run a shell command on the console; output (kernel lines removed) and exit code.

        The command is framed by unique markers (``echo B; cmd; echo E$?``) so its echo, the
        prompt and kernel messages printed meanwhile don't end up in the output. A command that
        does not finish in time is interrupted (Ctrl-C) and raises :class:`ExpectTimeout`.
        ``strip_kernel`` (default: yes, except for ``dmesg``, whose output *is* kernel lines)
        controls the removal of ``[ 12.345] ...`` lines.

        Example::

            r = con.run("cat /proc/uptime")
            uptime = float(r.output.split()[0])
        """
        if "\n" in cmd.strip() or "\r" in cmd:
            raise ValueError("run() takes one command line; join commands with ';' or '&&'")
        body = cmd.strip().rstrip(";").strip()
        if not body:
            raise ValueError("empty command")
        refuse_control_bytes(body)
        tag = secrets.token_hex(5)
        begin, end = f"SB{tag}", f"SE{tag}"
        t0 = time.monotonic()
        self.drain()
        spill = Spill(self.log_path.parent if self.log_path else None, tag)

        def collect() -> None:  # under the console's lock, right after the begin marker
            self._spill = spill

        self._write(self._encode(f"echo {begin}; {body}; echo {end}$?{self.newline}"))
        try:
            # a kernel message may land right after a marker, before its newline or exit code
            self._expect(rf"{begin}(?:{_KLINE})*\r?\n", timeout, check_death=check_death, on_match=collect)
            m = self._expect(
                rf"{end}(?:{_KLINE})*(\d+)", max(0.0, timeout - (time.monotonic() - t0)), check_death=check_death
            )
        except ExpectTimeout as exc:
            self._stop_spill(spill, keep=False)
            with contextlib.suppress(InfraError):
                self._write(b"\x03")
            last = exc.tail.rstrip().rsplit("\n", 1)[-1] + " "
            where = ""
            if re.search(self.login_prompt, last) or re.search(self.password_prompt, last):
                where = " (the console is at a login prompt: not logged in, or the box rebooted)"
            elif re.search(self.bootloader_prompt, last):
                where = " (the console is at the bootloader prompt)"
            raise ExpectTimeout(
                f"`{cmd}` did not finish within {timeout:.1f} s on the console{where}",
                rig=self.rig_name,
                tail=exc.tail,
                log_path=self.log_path,
                patterns=exc.patterns,
                timeout=timeout,
            ) from None
        except BaseException:
            self._stop_spill(spill, keep=False)
            raise
        assert m is not None
        head = self._stop_spill(spill, keep=True)
        raw = head + m.before
        if strip_kernel is None:
            strip_kernel = body.split()[0] not in ("dmesg", "journalctl")
        output = clean_output(raw) if strip_kernel else raw.replace("\r\n", "\n").replace("\r", "")
        output_path = None
        if head:  # more than the expect buffer holds: the whole output also goes to the run folder
            output_path = spill.path.with_suffix(".out")
            output_path.write_text(output, encoding="utf-8")
        return CommandResult(cmd, output, int(m.group(1)), time.monotonic() - t0, output_path=output_path)

    def _stop_spill(self, spill: Spill, *, keep: bool) -> str:
        """Stop collecting into ``spill``; its text (``keep``) or nothing, and the file removed."""
        with self._cond:
            if self._spill is spill:
                self._spill = None
        if keep:
            return spill.read_and_remove()
        spill.discard()
        return ""
