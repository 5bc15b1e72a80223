"""What a box reports about itself: firmware version, build, serial, diagnostics, kernel log, uptime.

Read as the box profile says (:mod:`lab.profile`), over the console or SSH. Part of
:class:`lab.device.Stb` (the queries half; the instruments and states are in :mod:`lab.device`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from lab.device_state import StbState
from lab.drivers.result import CommandResult
from lab.errors import DeviceFault, TestError

if TYPE_CHECKING:
    from lab.profile import BoxProfile, Provenance
    from lab.protocols import Shell
    from lab.rig import Rig

R = TypeVar("R")

_INFO_KEY = {"build_id": "firmware_build", "serial_number": "serial"}


class StbQueries:
    """The queries half of :class:`~lab.device.Stb` (its attributes are set by ``Stb.__init__``)."""

    rig: Rig
    rig_name: str
    state: StbState
    _info: dict[str, str]
    _ssh: Shell | None
    _provenance: Provenance | None

    if TYPE_CHECKING:

        @property
        def profile(self) -> BoxProfile: ...

        @property
        def ssh(self) -> Shell: ...

        def run(self, cmd: str, timeout: float = 30.0) -> CommandResult: ...

        def _call_guarded(self, fn: Callable[[], R]) -> R: ...

    def _probe_runner(self, via: str, memo: dict[str, CommandResult] | None = None) -> Callable[[Any], CommandResult]:
        """Runs a profile probe over ``via`` (``console``, ``ssh``, or ``auto``: the probe's own choice);
        with ``memo``, a command already run for another probe is not run again."""

        def run(probe: Any) -> CommandResult:
            if memo is not None and probe.command in memo:
                return memo[probe.command]
            res = run_once(probe)
            if memo is not None:
                memo[probe.command] = res
            return res

        def run_once(probe: Any) -> CommandResult:
            where = via
            if where == "auto":
                where = "ssh" if probe.via == "ssh" or (probe.via == "any" and self._ssh is not None) else "console"
            if where == "ssh":
                return self._call_guarded(lambda: self.ssh.run(probe.command, timeout=probe.timeout))
            if where != "console":
                raise TestError(f"via must be 'console' or 'ssh', not {via!r}")
            return self.run(probe.command, timeout=probe.timeout)

        return run

    def _identity(self, key: str, via: str, symptom: str, memo: dict[str, CommandResult] | None = None) -> str:
        from lab.profile import ProbeFailed, read_probe

        probe = getattr(self.profile.identify, key)
        if probe is None:
            raise TestError(f"profile {self.profile.model!r} does not say how to read the {key.replace('_', ' ')}")
        try:
            value = str(read_probe(probe, self._probe_runner(via, memo))).strip()
        except ProbeFailed as exc:
            raise DeviceFault(str(exc), rig=self.rig_name, symptom=symptom) from None
        self._info[_INFO_KEY.get(key, key)] = value
        return value

    def firmware_version(self, *, via: str = "console") -> str:
        """Running firmware version, read as the profile says (``via="ssh"`` asks over SSH).

        The build id is read with it when the profile knows how (``info()["firmware_build"]``).
        """
        memo: dict[str, CommandResult] = {}
        version = self._identity("firmware_version", via, "bad-fw-version-output", memo)
        if self._knows("build_id"):
            with contextlib.suppress(DeviceFault):
                self._identity("build_id", via, "bad-fw-version-output", memo)
        return version

    def diag(self, *, via: str = "console") -> dict[str, Any]:
        """The box's diagnostics document, from the profile's diagnostics commands."""
        from lab.profile import read_diagnostics, read_identity

        doc, problems = read_diagnostics(self.profile, self._probe_runner(via))
        # the identity belongs to the document too (serial, model, firmware), read the same way
        identity = {"serial": "serial_number", "model": "model", "firmware_version": "firmware_version"}
        missing = [key for doc_key, key in identity.items() if doc_key not in doc]
        if missing:
            prov = read_identity(self.profile, self._probe_runner(via), [k for k in missing if self._knows(k)])
            for doc_key, key in identity.items():
                if key in prov.values:
                    doc[doc_key] = prov.values[key]
            problems.update(prov.problems)
        if problems and not doc:
            name, why = next(iter(problems.items()))
            raise DeviceFault(f"diagnostics unreadable: {name}: {why}", rig=self.rig_name, symptom="bad-diag-output")
        if problems:
            doc["_problems"] = problems
        return doc

    def _knows(self, key: str) -> bool:
        return getattr(self.profile.identify, key, None) is not None

    def serial_number(self) -> str:
        """The device's serial number, read as the profile says."""
        if "serial" not in self._info:
            self._identity("serial_number", "console", "bad-serial-output")
        return self._info["serial"]

    def kernel_log(self, *, via: str = "console") -> str:
        """The kernel log, by the profile's command (``dmesg`` for Linux boxes); whole, however long."""
        probe = self.profile.kernel_log
        if probe is None:
            raise TestError(f"profile {self.profile.model!r} does not say how to read the kernel log")
        return self._succeeded(probe.command, via, self._probe_runner(via)(probe))

    def uptime(self, *, via: str = "console") -> float:
        """Seconds since the box booted, from ``/proc/uptime``."""
        out = self._query("cat /proc/uptime", via)
        m = re.search(r"(\d+(?:\.\d+)?)\s+\d+(?:\.\d+)?", out)
        if not m:
            raise DeviceFault(
                f"/proc/uptime unreadable: {out.strip()[:200]!r}", rig=self.rig_name, symptom="bad-uptime-output"
            )
        return float(m.group(1))

    def _query(self, cmd: str, via: str) -> str:
        if via == "ssh":
            res = self._call_guarded(lambda: self.ssh.run(cmd, timeout=15))
        elif via == "console":
            res = self.run(cmd, timeout=15)
        else:
            raise TestError(f"via must be 'console' or 'ssh', not {via!r}")
        return self._succeeded(cmd, via, res)

    def _succeeded(self, cmd: str, via: str, res: CommandResult) -> str:
        """The output of a query command that exited 0; a ``command-failed`` DeviceFault otherwise."""
        if res.exit_code != 0:
            raise DeviceFault(
                f"`{cmd}` exited {res.exit_code} over {via}",
                rig=self.rig_name,
                symptom="command-failed",
                excerpt=(res.output + res.stderr)[-500:],
            )
        return res.output

    def provenance(self, *, refresh: bool = False) -> Provenance:
        """Firmware version, build, serial, model and kernel as the profile reads them; each value
        read or ``unknown (reason)`` (see :class:`lab.profile.Provenance`). Read once per boot."""
        from lab.profile import ProfileError, Provenance, read_identity

        if self._provenance is None or refresh:
            try:
                profile = self.profile
            except ProfileError as exc:
                return Provenance(problems={k: str(exc) for k in ("firmware_version", "build_id", "serial_number")})
            if self.state != StbState.SHELL:
                prov = Provenance(problems={"firmware_version": f"box not in a shell (state {self.state})"})
                return prov
            prov = read_identity(profile, self._probe_runner("console"))
            for key, value in prov.values.items():
                self._info[_INFO_KEY.get(key, key)] = value
            self._provenance = prov
        return self._provenance

    def report_properties(self) -> dict[str, str]:
        """JUnit/Allure properties: ``firmware_version``, ``firmware_build``, ``device_serial``,
        each the value or ``unknown (reason)`` -- never silently absent."""
        prov = self.provenance()
        return {
            "firmware_version": prov.get("firmware_version"),
            "firmware_build": prov.get("build_id"),
            "device_serial": prov.get("serial_number"),
        }

    def info(self) -> dict[str, str]:
        """Rig, model, firmware version and serial known so far (for report properties)."""
        out = {"rig": self.rig_name, "model": self.rig.model}
        out.update(self._info)
        return out

    def collect_info(self) -> dict[str, str]:
        """Ask the box for firmware version and serial once (when it is in a shell) and return :meth:`info`."""
        if self.state == StbState.SHELL and ("firmware_version" not in self._info or "serial" not in self._info):
            self.provenance(refresh=True)
        return self.info()
