"""Ask the box over SSH, and blame a dead sshd on the box (not the lab) when the console answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from lab.drivers.ssh import HostKeyError
from lab.errors import DeviceFault, InfraError

T = TypeVar("T")


def over_ssh(stb: Any, ask: Callable[[], T]) -> T:
    """Run ``ask()`` (which talks SSH); an SSH failure while the console still answers is a
    DeviceFault ``sshd-dead``. A changed host key stays the lab's business (InfraError)."""
    try:
        return ask()
    except HostKeyError:
        raise  # a changed host key is the lab's (or an attacker's) business, never "sshd died"
    except InfraError as exc:
        if exc.instrument != "ssh":
            raise
        # The SSH failure has marked the rig bad, so ask the console driver itself (stb.run would
        # refuse at once), and take the mark back when the box is to blame.
        try:
            console_answers = stb.console.run("true", timeout=10).exit_code == 0
        except DeviceFault:
            stb.health.absolve(stb.rig_name)  # the box crashed (e.g. sshd's segfault on the console)
            raise
        if not console_answers:
            raise
        stb.health.absolve(stb.rig_name)
        raise DeviceFault(f"SSH does not answer while the console does: {exc.message}", symptom="sshd-dead") from exc
