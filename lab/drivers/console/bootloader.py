"""Bootloader on the console: stopping autoboot and running bootloader commands."""

from __future__ import annotations

import re
import time

from lab.drivers.console.base import ConsoleBase
from lab.drivers.console.port import INSTRUMENT
from lab.drivers.console.shell import clean_output
from lab.drivers.result import CommandResult
from lab.steps import step

AUTOBOOT = r"Hit any key to stop autoboot|Autoboot in \d+ seconds|autoboot in \d+"
KERNEL_STARTED = r"Starting kernel \.\.\.|Booting Linux|Linux version \d"


class BootloaderMixin(ConsoleBase):
    """Bootloader half of :class:`lab.drivers.console.SerialConsole`."""

    @step(INSTRUMENT)
    def interrupt_bootloader(self, timeout: float = 30.0, *, key: str | bytes = "\r") -> None:
        """Stop the autoboot countdown and wait for the bootloader prompt (``=> ``).

        Waits for the countdown (power the box on after calling this, or while it runs), then
        keeps sending ``key`` until the prompt appears; a box already at the prompt is asked for
        a fresh one (``key`` after half a second of silence). If the kernel starts anyway although
        the countdown was seen, the keys did not reach the box: an ``InfraError`` (the console's
        transmit path), not a device fault.
        """
        deadline = time.monotonic() + timeout
        data = self._encode(key)
        patterns = [self.autoboot, self.bootloader_prompt, self.kernel_started]
        while True:
            remaining = deadline - time.monotonic()
            # at the deadline: one last look, ExpectTimeout (with the tail) only if nothing is there
            m = self._expect(patterns, max(0.0, min(remaining, 0.5)), raise_timeout=remaining <= 0, overall=timeout)
            if m is not None:
                break
            if self._quiet_for() >= 0.5:  # a box already sitting at the prompt prints nothing: ask for one
                self._write(data)
        if m.index == 2:
            raise self._infra("the kernel started before an autoboot countdown was seen (console opened too late?)")
        if m.index == 0:
            while True:
                self._write(data)
                remaining = deadline - time.monotonic()
                got = self._expect(
                    [self.bootloader_prompt, self.kernel_started], max(0.0, min(0.1, remaining)), raise_timeout=False
                )
                if got is not None and got.index == 0:
                    break
                if got is not None:
                    raise self._infra("autoboot countdown was not interrupted: keys sent on the console had no effect")
                if remaining <= 0:
                    self._expect(self.bootloader_prompt, 0.0, overall=timeout)  # the prompt, or ExpectTimeout
                    break
        # let the extra keys' prompts arrive, then start clean
        end = time.monotonic() + 0.5
        while time.monotonic() < end and self._quiet_for() < 0.15:
            time.sleep(0.05)
        self.drain()

    @step(INSTRUMENT)
    def bootloader_run(self, cmd: str, timeout: float = 10.0) -> CommandResult:
        """Run a bootloader command at the ``=> `` prompt; its output (echo removed).

        The exit code is 127 when the bootloader says ``Unknown command``, else 0 (U-Boot has no
        reliable status over the console). ``boot``/``reset`` don't come back to the prompt: send
        them with :meth:`sendline` instead.
        """
        t0 = time.monotonic()
        self.drain()
        self._write(self._encode(cmd + self.newline))
        m = self._expect(self.bootloader_prompt, timeout)
        assert m is not None
        lines = clean_output(m.before).split("\n")
        if lines and lines[0].strip().endswith(cmd.strip()):
            lines = lines[1:]
        out = "\n".join(lines).strip("\n")
        out = out + "\n" if out else ""
        code = 127 if re.search(r"Unknown command", out) else 0
        return CommandResult(cmd, out, code, time.monotonic() - t0)
