"""Titles of failed checks (no console crash) and of other failures, for every algorithm version.

A failed check is fingerprinted by scenario, check kind and what it was looking at (screen,
region, channel), never by the raw score. The title is the same under every algorithm version;
only the version tag (and so the hash) differs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lab.rma.signature import _MAX_TITLE, _WS, Fingerprint, _retag, normalise


@dataclass(frozen=True)
class CheckDescriptor:
    """What a failed check was doing: the scenario, the kind of check, what it looked at.

    ``target`` names the screen, region or channel (``"channel 5 banner"``, ``"region 0,0,640,360"``).
    ``detail`` (scores, thresholds) is kept as evidence but never fingerprinted.
    """

    scenario: str
    check: str
    target: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def coerce(cls, value: CheckDescriptor | Mapping[str, Any]) -> CheckDescriptor:
        """Accept a descriptor or a mapping with ``scenario``, ``check`` (or ``kind``) and ``target``."""
        if isinstance(value, CheckDescriptor):
            return value
        try:
            return cls(
                str(value["scenario"]),
                str(value.get("check") or value["kind"]),
                str(value.get("target") or ""),
                dict(value.get("detail") or {}),
            )
        except KeyError as exc:
            raise ValueError(f"check descriptor needs 'scenario' and 'check': missing {exc}") from None


def _scenario_name(scenario: str) -> str:
    """A pytest node id without parameters or rig: ``scenarios/test_zap.py::test_zap[stb-a-3]`` -> ``...::test_zap``."""
    return re.sub(r"\[.*\]$", "", scenario.strip())


def _fingerprint_check_v1(check: CheckDescriptor) -> Fingerprint:
    scenario = _WS.sub(" ", _scenario_name(check.scenario))
    kind = _WS.sub(" ", check.check.strip())
    target = _WS.sub(" ", check.target.strip())
    on = f" on {target}" if target else ""
    title = f"check {kind} failed{on} in {scenario}"[:_MAX_TITLE]
    return Fingerprint("check", title, (), 1)


def _fingerprint_other_v1(test_id: str, symptom: str | None) -> Fingerprint:
    what = _WS.sub(" ", symptom.strip()) if symptom else "failure"
    return Fingerprint("other", normalise(f"{what} in {_scenario_name(test_id)}"), (), 1)


def _fingerprint_check_v2(check: CheckDescriptor) -> Fingerprint:
    return _retag(_fingerprint_check_v1(check), 2)


def _fingerprint_other_v2(test_id: str, symptom: str | None) -> Fingerprint:
    return _retag(_fingerprint_other_v1(test_id, symptom), 2)


def _fingerprint_check_v3(check: CheckDescriptor) -> Fingerprint:
    return _retag(_fingerprint_check_v1(check), 3)


def _fingerprint_other_v3(test_id: str, symptom: str | None) -> Fingerprint:
    return _retag(_fingerprint_other_v1(test_id, symptom), 3)
