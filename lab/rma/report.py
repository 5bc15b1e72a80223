"""What the pytest plugin hands to filing (:class:`FaultReport`) and what it gets back (:class:`FilingResult`).

A report describes one device fault seen in one test run: where (rig, device, firmware), what ran
(test id, parameters, seed, network profile), when, what the fingerprint is made from (console
log text and/or a failed check descriptor), and the artifact files to keep.

``occurrence_key`` makes filing idempotent: filing the same report twice, or replaying it from the
journal, stores it once. Give one that names the run (e.g. ``f"{session_id}:{nodeid}:{attempt}"``);
without one, a key is derived from rig, device, test id, seed and start time.

Parameters whose names look secret (password, token, key, secret) are stored as ``***``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lab.rma.fingerprint import CheckDescriptor

_SECRET = re.compile(
    r"pass(word|phrase|wd)?|pwd|secret|token|(^|[_-])key$|apikey|private|credential|cookie|bearer|"
    r"authori[sz]ation|(^|[_-])auth([_-]|$)",
    re.I,
)
# Credentials inside a URL (rtsp://admin:hunter2@cam/live): the user stays, the password goes.
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@")
_VERSION = re.compile(r"^[vVrR]?\d[\w.+~-]*$")


def check_version(text: str) -> str:
    """``text`` if it reads as a firmware version (``2.1.0``, ``R2.1.0.45``, ``2.1.0-rc1``), else ValueError."""
    if not isinstance(text, str) or not _VERSION.match(text.strip()):
        raise ValueError(f"not a firmware version: {text!r} (expected e.g. 2.1.0, 2.1.0-rc1, R2.1.0.45)")
    return text.strip()


FILEABLE_OUTCOMES = {"failed", "device_fault", "device-fault", "fault"}


def redact(value: Any) -> Any:
    """A copy of ``value`` with secret-looking mapping keys' values replaced by ``***``, and
    passwords inside URLs (``scheme://user:password@host``) replaced by ``***``."""
    if isinstance(value, Mapping):
        return {str(k): ("***" if _SECRET.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\1***@", value)
    return value


def to_utc(value: dt.datetime | float | int | str | None) -> dt.datetime | None:
    """A naive UTC datetime from a datetime (aware or naive-UTC), a POSIX time or an ISO string."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC).replace(tzinfo=None)
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


@dataclass
class FaultReport:
    """One device fault seen in one test run (see the module docstring)."""

    rig: str
    device_serial: str
    model: str
    test_id: str
    firmware_version: str | None = None
    firmware_build_id: str | None = None
    firmware_sha256: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | str | None = None
    network_profile: dict[str, Any] | str | None = None
    outcome: str = "failed"
    started: dt.datetime | float | str | None = None
    ended: dt.datetime | float | str | None = None
    console_log: str | None = None
    check: CheckDescriptor | dict[str, Any] | None = None
    title: str | None = None
    symptom: str | None = None
    message: str | None = None
    excerpt: str | None = None
    artifacts: dict[str, str | os.PathLike[str]] | list[str | os.PathLike[str]] = field(default_factory=dict)
    occurrence_key: str | None = None
    hardware_revision: str | None = None
    production_lot: str | None = None

    def validate(self) -> None:
        """Raise ValueError naming the field when the report cannot be filed."""
        for name in ("rig", "device_serial", "test_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"FaultReport.{name} must be a non-empty string, got {value!r}")
        if not isinstance(self.outcome, str) or self.outcome.lower() not in FILEABLE_OUTCOMES:
            raise ValueError(
                f"outcome {self.outcome!r} is not a device fault: only device faults are filed "
                "(infra errors and test errors never are)"
            )
        if self.firmware_version is not None:
            # Kept as the box reported it: a filing is never lost over an odd version string.
            self.firmware_version = str(self.firmware_version).strip() or None
        for name in ("started", "ended"):
            try:
                to_utc(getattr(self, name))
            except (TypeError, ValueError, OverflowError, OSError) as exc:
                raise ValueError(f"FaultReport.{name} is not a time: {getattr(self, name)!r} ({exc})") from None
        if self.occurrence_key is not None and not 0 < len(self.occurrence_key) <= 128:
            raise ValueError("occurrence_key must be 1..128 characters")

    def key(self) -> str:
        """The occurrence key (given, or derived from rig, device, test, seed and start)."""
        if self.occurrence_key:
            return self.occurrence_key
        started = to_utc(self.started)
        basis = json.dumps(
            [self.rig, self.device_serial, self.test_id, str(self.seed), started.isoformat() if started else None]
        )
        return "auto:" + hashlib.sha256(basis.encode()).hexdigest()[:40]

    def artifact_items(self) -> list[tuple[str, Path]]:
        """(name, path) pairs of the artifact files."""
        if isinstance(self.artifacts, Mapping):
            return [(str(k), Path(v)) for k, v in self.artifacts.items()]
        return [(Path(p).name, Path(p)) for p in self.artifacts]

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form for the journal (secrets already redacted)."""
        d = asdict(self) if not isinstance(self.check, CheckDescriptor) else {**asdict(self)}
        if isinstance(self.check, CheckDescriptor):
            d["check"] = {
                "scenario": self.check.scenario,
                "check": self.check.check,
                "target": self.check.target,
                "detail": dict(self.check.detail),
            }
        d["params"] = redact(self.params)
        d["network_profile"] = redact(self.network_profile)
        for k in ("started", "ended"):
            v = to_utc(getattr(self, k))
            d[k] = v.isoformat() if v else None
        d["artifacts"] = {name: str(path) for name, path in self.artifact_items()}
        d["occurrence_key"] = self.key()
        return json.loads(json.dumps(d, default=str))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultReport:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class FilingResult:
    """What filing did: the fault (``is_new`` when this occurrence created it), the occurrence, the
    fault's status after filing. ``replayed`` when the occurrence was already stored (a retry or a
    journal replay); ``journaled`` when the database could not be reached and the report waits in
    the local journal (then ``fault_id`` and ``occurrence_id`` are None)."""

    fault_id: int | None
    is_new: bool
    occurrence_id: int | None
    status: str
    title: str = ""
    occurrence_key: str = ""
    regression: bool = False
    replayed: bool = False
    journaled: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
