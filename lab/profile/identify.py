"""Provenance and diagnostics from a box, through its profile's probes.

Provenance (firmware version, build, serial number, model, kernel) that cannot be read is never
silently absent: each value is either read or ``unknown (reason)``, and the reasons are warnings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.drivers.result import CommandResult
from lab.errors import InfraError
from lab.profile.model import BoxProfile, Identify, Probe
from lab.profile.parse import ParseError, parse

#: runs a probe's command on the box (console or SSH, as the caller decides)
Runner = Callable[[Probe], CommandResult]


class ProbeFailed(Exception):
    """A probe's command failed or its output did not hold the value; ``reason`` says which."""

    def __init__(self, probe: Probe, reason: str) -> None:
        super().__init__(f"`{probe.command}`: {reason}")
        self.probe = probe
        self.reason = reason


def read_probe(probe: Probe, run: Runner) -> Any:
    """Run ``probe`` and parse its output; :class:`ProbeFailed` with the reason when it cannot.

    An ``InfraError`` (the console or SSH failed) is not caught: the lab failed, not the probe.
    """
    res = run(probe)
    if res.exit_code != 0:
        tail = (res.output + res.stderr).strip().splitlines()[-1:] or ["no output"]
        raise ProbeFailed(probe, f"exited {res.exit_code}: {tail[0][:160]}")
    try:
        return parse(probe, res.output)
    except ParseError as exc:
        raise ProbeFailed(probe, str(exc)) from None


@dataclass
class Provenance:
    """What the box said about itself: ``values`` read, ``problems`` (key -> why not)."""

    values: dict[str, str] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str:
        """The value, or ``unknown (reason)``."""
        if key in self.values:
            return self.values[key]
        return f"unknown ({self.problems.get(key, 'not read')})"

    def properties(self, keys: list[str] | None = None) -> dict[str, str]:
        """Every key (read ones and failed ones) as report properties; failed ones ``unknown (reason)``."""
        wanted = keys or [*self.values, *(k for k in self.problems if k not in self.values)]
        return {k: self.get(k) for k in wanted}

    def warnings(self) -> list[str]:
        """One line per value that could not be read."""
        return [f"{key} unknown: {why}" for key, why in self.problems.items()]

    @property
    def complete(self) -> bool:
        """True when nothing failed."""
        return not self.problems


def read_identity(profile: BoxProfile, run: Runner, keys: list[str] | None = None) -> Provenance:
    """Read the profile's identity values (all, or ``keys``); failures become ``problems``."""
    prov = Provenance()
    for key in keys or list(Identify.model_fields):
        probe = getattr(profile.identify, key, None)
        if probe is None:
            if keys is not None:
                prov.problems[key] = f"profile {profile.model!r} does not say how to read it"
            continue
        try:
            prov.values[key] = str(read_probe(probe, run)).strip()
        except ProbeFailed as exc:
            prov.problems[key] = str(exc)
        except InfraError as exc:
            prov.problems[key] = f"`{probe.command}`: {exc.message}"
    return prov


def read_diagnostics(profile: BoxProfile, run: Runner) -> tuple[dict[str, Any], dict[str, str]]:
    """The diagnostics document (name -> parsed result) and the parts that failed (name -> why)."""
    doc: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for diag in profile.diagnostics:
        try:
            value = read_probe(diag, run)
        except ProbeFailed as exc:
            problems[diag.name] = str(exc)
            continue
        if diag.name == "." and isinstance(value, dict):  # a whole document at the top level
            doc.update(value)
        else:
            doc[diag.name] = value
    return doc, problems
