"""What a command run on the box returned, over the console or over SSH."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CommandResult:
    """Output (stdout, and stderr merged where the transport merges it), exit code, duration in s.

    Truthy when the command succeeded::

        if not console.run("fw version"):
            ...
    """

    command: str
    output: str
    exit_code: int
    duration: float
    stderr: str = ""
    #: a copy of ``output`` in the run folder when it was too big for the console's buffer (else None)
    output_path: Path | None = None

    def __bool__(self) -> bool:
        return self.exit_code == 0

    def check(self) -> CommandResult:
        """Return self, or raise ``CommandFailed`` when the exit code is not 0."""
        if self.exit_code != 0:
            raise CommandFailed(self)
        return self


class CommandFailed(Exception):
    """A command exited non-zero where the caller required success."""

    def __init__(self, result: CommandResult) -> None:
        tail = (result.output + result.stderr).strip().splitlines()[-5:]
        super().__init__(f"`{result.command}` exited {result.exit_code}: " + " | ".join(tail))
        self.result = result
