"""RMA cases of returned devices: states, evidence, verdicts (immutable; a new one supersedes).

States: ``received -> diagnosing -> diagnosed -> repair | replace | refund -> closed`` (a diagnosed
device may also be closed directly, e.g. no fault found and returned, and may go back to
diagnosing when new evidence comes). Every change goes to the audit log in the same transaction.

A verdict names its evidence rows, the rule set's version and a justification. Verdict rows are
never updated (the database refuses it); a later verdict *supersedes* the current one, and a
person's override is a verdict with ``override_reason`` set.

Example::

    with store.session() as s, s.begin():
        case = create_case(s, serial="SN-A0001", complaint="no picture", received=date.today(), actor="desk")
        ev = add_evidence(s, case.id, kind="brownout", source="ssh:/var/log/pmic", value="3 events", actor="lab")
        record_verdict(s, case.id, "user_damage", rule_set_version="warranty-rules/1",
                       justification="...", evidence_ids=[ev.id], actor="warranty-rules")
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lab.errors import TestError
from lab.rma.audit import append_audit
from lab.rma.models import Device, Evidence, RmaCase, Verdict, VerdictEvidence, utcnow

STATES = ("received", "diagnosing", "diagnosed", "repair", "replace", "refund", "closed")
TRANSITIONS: dict[str, set[str]] = {
    "received": {"diagnosing"},
    "diagnosing": {"diagnosed"},
    "diagnosed": {"repair", "replace", "refund", "closed", "diagnosing"},
    "repair": {"closed"},
    "replace": {"closed"},
    "refund": {"closed"},
    "closed": set(),
}
VERDICTS = ("user_damage", "firmware_defect", "manufacturing_defect", "no_fault_found", "warranty_defect")


def _case(session: Session, case_id: int) -> RmaCase:
    case = session.get(RmaCase, case_id)
    if case is None:
        raise TestError(f"no RMA case with id {case_id}")
    return case


def create_case(
    session: Session,
    *,
    serial: str,
    complaint: str,
    received: dt.date,
    actor: str,
    model: str | None = None,
) -> RmaCase:
    """Open a case for a returned device (the device row is created when first seen)."""
    if not serial.strip():
        raise TestError("an RMA case needs the device serial number")
    device = session.execute(select(Device).where(Device.serial == serial)).scalar_one_or_none()
    if device is None:
        device = Device(serial=serial, model=model or "", created_at=utcnow())
        session.add(device)
        session.flush()
    case = RmaCase(
        device_id=device.id,
        complaint=complaint,
        received=received,
        state="received",
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.add(case)
    session.flush()
    append_audit(
        session,
        actor=actor,
        action="case.created",
        entity="case",
        entity_id=case.id,
        detail={"serial": serial, "complaint": complaint, "received": received.isoformat()},
    )
    return case


def set_state(session: Session, case_id: int, state: str, *, actor: str, note: str = "") -> RmaCase:
    """Move a case to ``state``; an impossible move raises TestError naming the allowed ones."""
    case = _case(session, case_id)
    if state not in STATES:
        raise TestError(f"unknown case state {state!r}; states are {', '.join(STATES)}")
    if state not in TRANSITIONS[case.state]:
        allowed = ", ".join(sorted(TRANSITIONS[case.state])) or "none (closed)"
        raise TestError(f"case {case_id} cannot go from {case.state} to {state}; allowed: {allowed}")
    before = case.state
    case.state, case.updated_at = state, utcnow()
    append_audit(
        session,
        actor=actor,
        action="case.state",
        entity="case",
        entity_id=case_id,
        detail={"from": before, "to": state, "note": note},
    )
    return case


def add_evidence(
    session: Session,
    case_id: int,
    *,
    kind: str,
    source: str,
    value: str,
    actor: str,
    detail: dict[str, Any] | None = None,
    artifact_id: int | None = None,
    occurrence_id: int | None = None,
) -> Evidence:
    """Keep one piece of evidence (what was seen, where it came from)."""
    _case(session, case_id)
    ev = Evidence(
        case_id=case_id,
        kind=kind,
        source=source,
        value=value,
        detail=json.dumps(detail or {}, sort_keys=True, default=str),
        artifact_id=artifact_id,
        occurrence_id=occurrence_id,
        collected_at=utcnow(),
    )
    session.add(ev)
    session.flush()
    append_audit(
        session,
        actor=actor,
        action="evidence.added",
        entity="case",
        entity_id=case_id,
        detail={"evidence_id": ev.id, "kind": kind, "source": source, "value": value},
    )
    return ev


def current_verdict(session: Session, case_id: int) -> Verdict | None:
    """The verdict no other verdict supersedes (None before the first)."""
    superseded = select(Verdict.supersedes_id).where(Verdict.case_id == case_id, Verdict.supersedes_id.is_not(None))
    return (
        session.execute(
            select(Verdict).where(Verdict.case_id == case_id, Verdict.id.not_in(superseded)).order_by(Verdict.id.desc())
        )
        .scalars()
        .first()
    )


def record_verdict(
    session: Session,
    case_id: int,
    verdict: str,
    *,
    rule_set_version: str,
    justification: str,
    evidence_ids: list[int],
    actor: str,
    override_reason: str | None = None,
) -> Verdict:
    """Store a verdict with the evidence it used; it supersedes the current one, if any."""
    if verdict not in VERDICTS:
        raise TestError(f"unknown verdict {verdict!r}; verdicts are {', '.join(VERDICTS)}")
    if not justification.strip():
        raise TestError("a verdict needs a justification")
    if override_reason is not None and not override_reason.strip():
        raise TestError("an override needs a reason")
    _case(session, case_id)
    ids = sorted(set(evidence_ids))
    if ids:
        rows = set(
            session.execute(select(Evidence.id).where(Evidence.id.in_(ids), Evidence.case_id == case_id)).scalars()
        )
        missing = [i for i in ids if i not in rows]
        if missing:
            raise TestError(f"evidence {missing} does not belong to case {case_id}")
    elif override_reason is None:
        raise TestError("a verdict without evidence is not a verdict: name the evidence rows it used")
    previous = current_verdict(session, case_id)
    row = Verdict(
        case_id=case_id,
        verdict=verdict,
        rule_set_version=rule_set_version,
        justification=justification,
        decided_by=actor,
        override_reason=override_reason,
        supersedes_id=previous.id if previous else None,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()  # two verdicts superseding the same one: the second fails at the unique key
    for eid in ids:
        session.add(VerdictEvidence(verdict_id=row.id, evidence_id=eid))
    session.flush()
    append_audit(
        session,
        actor=actor,
        action="verdict.override" if override_reason else "verdict.recorded",
        entity="case",
        entity_id=case_id,
        detail={
            "verdict_id": row.id,
            "verdict": verdict,
            "rule_set_version": rule_set_version,
            "evidence": ids,
            "supersedes": row.supersedes_id,
            "override_reason": override_reason,
        },
    )
    return row


def override_verdict(
    session: Session, case_id: int, verdict: str, *, reason: str, actor: str, evidence_ids: list[int] | None = None
) -> Verdict:
    """A person overrides the current verdict, with a reason (kept with the verdict and in the audit log)."""
    current = current_verdict(session, case_id)
    if current is None:
        raise TestError(f"case {case_id} has no verdict to override")
    if evidence_ids is None:
        evidence_ids = list(
            session.execute(
                select(VerdictEvidence.evidence_id).where(VerdictEvidence.verdict_id == current.id)
            ).scalars()
        )
    return record_verdict(
        session,
        case_id,
        verdict,
        rule_set_version=current.rule_set_version,
        justification=f"override by {actor}: {reason}",
        evidence_ids=evidence_ids,
        actor=actor,
        override_reason=reason,
    )
