"""Evidence from a returned device, and the damage indicators it supports.

Evidence is what the box reports about itself (``diag --json`` over SSH, falling back to the
console) and what its kernel log says (``dmesg``). Each item is stored on the RMA case; the
ones that cross a threshold become :class:`lab.warranty.rules.Indicator` objects for the rules.

Thresholds are part of the rule set (bump :data:`lab.warranty.rules.RULESET_VERSION` when they
change): one brownout is the mains, not the customer; a tamper switch or a failed verified boot
is never an accident.

Example::

    items = evidence_from_diag(stb.diag(via="ssh"))
    indicators = indicators_from(items)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lab.textsafe import escape_controls
from lab.warranty.rules import Indicator

#: Bound on one evidence value read from a box (characters); a box can print megabytes on one line.
MAX_VALUE = 2000

# kind -> (independence class, threshold on the count, what it means)
THRESHOLDS: dict[str, tuple[str, int, str]] = {
    "overvoltage": ("electrical", 1, "over-voltage events on the supply rail (surge)"),
    "brownouts": ("electrical", 5, "repeated supply brownouts"),
    "overtemperature": ("thermal", 3, "overtemperature shutdowns (blocked ventilation)"),
    "edid_failures": ("connector", 5, "HDMI EDID read failures (damaged HDMI port)"),
    "hdmi_hotplug": ("connector", 200, "excessive HDMI hot-plug events (loose or damaged port)"),
}

_DMESG_PATTERNS = {
    "overvoltage": re.compile(r"over-?voltage|OVP triggered|surge", re.I),
    "overtemperature": re.compile(r"over-?temperature|thermal shutdown|critical temperature", re.I),
    "tamper": re.compile(r"tamper", re.I),
    "verified_boot": re.compile(r"verified boot|signature verification failed|unsigned kernel", re.I),
}


def box_value(value: object, limit: int = MAX_VALUE) -> str:
    """A value a box reported, as stored evidence: control characters made visible, bounded.

    What the box said stays readable (``\\x1b[2J`` rather than a cleared screen) wherever the
    evidence is shown later: the database, ``stblab rma case``, a verdict's justification.
    """
    text = escape_controls(value)
    return text if len(text) <= limit else text[:limit] + f" [... {len(text) - limit} more characters cut]"


@dataclass(frozen=True)
class EvidenceItem:
    """One observation: what kind, where it came from, its value, and whether it indicates damage."""

    kind: str
    source: str
    value: str
    indicator: Indicator | None = None


def evidence_from_diag(diag: dict[str, Any], source: str = "ssh: diag --json") -> list[EvidenceItem]:
    """Evidence items from a ``diag --json`` document (unknown keys are ignored)."""
    items: list[EvidenceItem] = []
    reasons = diag.get("reboot_reasons") or {}
    if reasons:
        if isinstance(reasons, dict):
            text = ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items(), key=lambda kv: str(kv[0])))
        else:
            text = f"unreadable: {reasons!r}"
        items.append(EvidenceItem("reboot_reasons", source, box_value(text)))
    for key, (klass, threshold, meaning) in THRESHOLDS.items():
        if key not in diag:
            continue
        count = _count(diag[key])
        if count is None:  # a value we cannot read is kept as evidence, never made into an indicator
            items.append(EvidenceItem(key, source, box_value(f"unreadable: {diag[key]!r}")))
            continue
        ind = None
        if count >= threshold:
            ind = Indicator(klass, key, f"{count} {meaning}", source)
        items.append(EvidenceItem(key, source, str(count), ind))
    vb = diag.get("verified_boot")
    if vb is not None:
        ind = None
        if str(vb) != "ok":
            detail = f"verified boot state '{box_value(vb, 100)}' (unofficial firmware)"
            ind = Indicator("software", "unofficial_firmware", detail, source)
        items.append(EvidenceItem("verified_boot", source, box_value(vb), ind))
    if "tamper" in diag:
        tampered = _flag(diag["tamper"])
        if tampered is None:
            items.append(EvidenceItem("tamper", source, box_value(f"unreadable: {diag['tamper']!r}")))
        else:
            ind = Indicator("physical", "tamper", "tamper switch tripped (case opened)", source) if tampered else None
            items.append(EvidenceItem("tamper", source, "tripped" if tampered else "intact", ind))
    if "max_temperature_c" in diag:
        items.append(EvidenceItem("max_temperature_c", source, box_value(diag["max_temperature_c"])))
    fw = diag.get("firmware")
    if fw:
        items.append(EvidenceItem("firmware", source, box_value(fw)))
    return items


def _count(value: Any) -> int | None:
    """A counter from ``diag --json``: a whole number (or its text); None when it is not one."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _flag(value: Any) -> bool | None:
    """A switch state from ``diag --json``: true/false, 1/0 or their text; None when it is neither.

    Strict on purpose: ``bool("false")`` is True, and a tamper indicator read from a string would
    count towards user damage.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in {"true", "1", "yes", "tripped", "open"}:
        return True
    if text in {"false", "0", "no", "intact", "closed"}:
        return False
    return None


def evidence_from_dmesg(text: str, source: str = "console: dmesg") -> list[EvidenceItem]:
    """Kernel log lines that corroborate damage (kept as evidence, not counted twice as indicators)."""
    items = []
    for kind, pattern in _DMESG_PATTERNS.items():
        lines = [box_value(ln.strip(), 400) for ln in text.splitlines() if pattern.search(ln)]
        if lines:
            items.append(EvidenceItem(f"dmesg_{kind}", source, "\n".join(lines[:20])))
    return items


def indicators_from(items: list[EvidenceItem]) -> list[Indicator]:
    """The damage indicators among ``items``."""
    return [i.indicator for i in items if i.indicator is not None]
