"""Versioned warranty rules: from evidence and reproduction results to a verdict.

The rules are deliberately conservative, in the order a warranty engineer applies them:

1. A complaint whose fault does not reproduce is **no fault found** -- never user damage,
   whatever the indicators say (there is nothing to blame on the user).
2. A fault that also reproduces on a reference unit of the same model and firmware is a
   **firmware defect**: a healthy unit shows it too, so the unit is not the cause.
3. **User damage** needs at least two *independent* damage indicators: two indicators of one
   class (two over-voltage events, say) count once; an over-voltage event and a tamper switch
   count twice.
4. Otherwise the fault reproduces only on this unit: **manufacturing defect** (with one
   indicator, the verdict says so and asks for review rather than blaming the user).

Example::

    v = decide(Findings(reproduced=True, reproduced_on_reference=False,
                        indicators=[Indicator("electrical", "overvoltage", "3 surge events", "diag")]))
    v.verdict          # "manufacturing_defect" (one indicator is not enough for user damage)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from lab.textsafe import escape_controls, for_html, for_markdown, for_terminal

RULESET_VERSION = "warranty-rules/1"


class Verdict(StrEnum):
    """The four verdicts warranty staff hand to a customer."""

    USER_DAMAGE = "user_damage"
    FIRMWARE_DEFECT = "firmware_defect"
    MANUFACTURING_DEFECT = "manufacturing_defect"
    NO_FAULT_FOUND = "no_fault_found"


@dataclass(frozen=True)
class Indicator:
    """One damage indicator: its class, kind, what was seen, and where it came from."""

    klass: str
    kind: str
    detail: str
    source: str


@dataclass(frozen=True)
class Findings:
    """What the diagnosis established about a returned unit."""

    reproduced: bool
    reproduced_on_reference: bool | None  # None: no reference unit was available
    indicators: list[Indicator] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)  # titles of faults seen on the unit


@dataclass(frozen=True)
class Decision:
    """The verdict, the rule that decided it, the ruleset version and a justification."""

    verdict: Verdict
    rule: str
    ruleset: str
    justification: str
    needs_review: bool = False

    def as_text(self) -> str:
        """The decision for a terminal: no control sequence from a box reaches the tty."""
        head = f"verdict {self.verdict.value.upper().replace('_', ' ')} ({self.ruleset}, {self.rule})"
        review = "\n  review recommended before acting on it" if self.needs_review else ""
        return f"{head}\n  {for_terminal(self.justification, markup=False)}{review}"

    def as_markdown(self) -> str:
        """The decision as Markdown (a CI summary, a ticket): box text shown as text, never as markup."""
        review = "\n\n**Review recommended before acting on it.**" if self.needs_review else ""
        return (
            f"**Verdict:** {for_markdown(self.verdict.value)} ({for_markdown(self.ruleset)}, "
            f"{for_markdown(self.rule)})\n\n{for_markdown(self.justification)}{review}"
        )

    def as_html(self) -> str:
        """The decision as an HTML fragment (escaped; control characters made visible)."""
        review = "<p><b>Review recommended before acting on it.</b></p>" if self.needs_review else ""
        return (
            f"<p><b>Verdict:</b> {for_html(self.verdict.value)} ({for_html(self.ruleset)}, {for_html(self.rule)})</p>"
            f"<p>{for_html(self.justification)}</p>{review}"
        )


#: Bound on one piece of box-supplied text inside a justification (a fault title, an indicator's detail).
MAX_PIECE = 300


def _said(text: object) -> str:
    """Box-supplied text made fit for a justification: control characters visible, one line, bounded."""
    flat = escape_controls(text, keep_newlines=False)
    return flat if len(flat) <= MAX_PIECE else flat[:MAX_PIECE] + f" [... {len(flat) - MAX_PIECE} more characters cut]"


def independent_classes(indicators: list[Indicator]) -> list[str]:
    """Distinct independence classes among ``indicators``, in first-seen order."""
    seen: list[str] = []
    for ind in indicators:
        if ind.klass not in seen:
            seen.append(ind.klass)
    return seen


def decide(findings: Findings) -> Decision:
    """Apply the rules of :data:`RULESET_VERSION` to ``findings``."""
    classes = independent_classes(findings.indicators)
    described = (
        "; ".join(f"{_said(i.kind)} ({_said(i.detail)}, from {_said(i.source)})" for i in findings.indicators) or "none"
    )
    faults = ", ".join(_said(f) for f in findings.faults[:20]) or "the complaint"
    if len(findings.faults) > 20:
        faults += f" and {len(findings.faults) - 20} more"
    if not findings.reproduced:
        note = f" Damage indicators ({described}) alone do not make user damage." if classes else ""
        return Decision(
            Verdict.NO_FAULT_FOUND,
            "R1-not-reproduced",
            RULESET_VERSION,
            f"No fault reproduced for {faults}.{note}",
        )
    if findings.reproduced_on_reference:
        return Decision(
            Verdict.FIRMWARE_DEFECT,
            "R2-reproduces-on-reference",
            RULESET_VERSION,
            f"{faults} reproduced on this unit and on a reference unit of the same model and firmware.",
        )
    if len(classes) >= 2:
        return Decision(
            Verdict.USER_DAMAGE,
            "R3-two-independent-indicators",
            RULESET_VERSION,
            f"{faults} reproduced on this unit only, with {len(classes)} independent damage indicators "
            f"({', '.join(classes)}): {described}.",
        )
    ref = (
        "not on the reference unit" if findings.reproduced_on_reference is False else "no reference unit was available"
    )
    if classes:
        return Decision(
            Verdict.MANUFACTURING_DEFECT,
            "R4-single-indicator",
            RULESET_VERSION,
            f"{faults} reproduced on this unit ({ref}); one damage indicator ({described}) is not enough for "
            "user damage: review recommended.",
            needs_review=True,
        )
    return Decision(
        Verdict.MANUFACTURING_DEFECT,
        "R4-unit-only",
        RULESET_VERSION,
        f"{faults} reproduced on this unit ({ref}) with no damage indicators.",
    )
