"""Fault lifecycle: open -> fixed (in a version) | invalid | duplicate of another; reopen.

Every change is written to the audit log in the same transaction. A fault marked fixed in
version V is reopened as a regression by filing (see :mod:`lab.rma.filing`) when it is seen again
on firmware >= V, compared as versions (``2.10.0 > 2.9.1``), never as dates.

Example::

    with store.session() as s, s.begin():
        mark_fixed(s, fault_id, "2.1.1", actor="alice")
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from lab.errors import TestError
from lab.firmware.version import FirmwareVersion, version_key
from lab.rma.audit import append_audit
from lab.rma.models import Fault, Reproduction, utcnow
from lab.rma.report import check_version
from lab.rma.reproduction import ReproductionPolicy

STATUSES = ("open", "fixed", "invalid", "duplicate")


def _get(session: Session, fault_id: int) -> Fault:
    fault = session.get(Fault, fault_id)
    if fault is None:
        raise TestError(f"no fault with id {fault_id}")
    return fault


def mark_fixed(session: Session, fault_id: int, version: str, *, actor: str, note: str = "") -> Fault:
    """The fault is fixed in firmware ``version``: seen again at or after it, it reopens as a regression."""
    try:
        version = check_version(version)
        FirmwareVersion(version)
    except ValueError as exc:
        raise TestError(str(exc)) from None
    fault = _get(session, fault_id)
    before = fault.status
    fault.status, fault.fixed_in, fault.fixed_in_key = "fixed", version, version_key(version)
    fault.duplicate_of_id, fault.updated_at = None, utcnow()
    append_audit(
        session,
        actor=actor,
        action="fault.fixed",
        entity="fault",
        entity_id=fault_id,
        detail={"from": before, "fixed_in": version, "note": note},
    )
    return fault


def mark_invalid(session: Session, fault_id: int, *, actor: str, reason: str) -> Fault:
    """Not a device bug after all (the reason is kept in the audit log)."""
    if not reason.strip():
        raise TestError("marking a fault invalid needs a reason")
    fault = _get(session, fault_id)
    before = fault.status
    fault.status, fault.updated_at = "invalid", utcnow()
    append_audit(
        session,
        actor=actor,
        action="fault.invalid",
        entity="fault",
        entity_id=fault_id,
        detail={"from": before, "reason": reason},
    )
    return fault


def mark_duplicate(session: Session, fault_id: int, of_fault_id: int, *, actor: str) -> Fault:
    """The fault is the same bug as ``of_fault_id``: its later occurrences are filed there."""
    from lab.rma.filing import canonical_fault

    fault = _get(session, fault_id)
    target = canonical_fault(session, _get(session, of_fault_id).id)
    if target.id == fault.id:
        raise TestError(f"fault {fault_id} cannot be a duplicate of itself (via {of_fault_id})")
    before = fault.status
    fault.status, fault.duplicate_of_id, fault.updated_at = "duplicate", target.id, utcnow()
    append_audit(
        session,
        actor=actor,
        action="fault.duplicate",
        entity="fault",
        entity_id=fault_id,
        detail={"from": before, "duplicate_of": target.id},
    )
    return fault


def reopen(session: Session, fault_id: int, *, actor: str, reason: str = "") -> Fault:
    """Back to open (a person decided; regressions are reopened by filing)."""
    fault = _get(session, fault_id)
    before = fault.status
    fault.status, fault.duplicate_of_id, fault.updated_at = "open", None, utcnow()
    append_audit(
        session,
        actor=actor,
        action="fault.reopened",
        entity="fault",
        entity_id=fault_id,
        detail={"from": before, "reason": reason},
    )
    return fault


def record_reproduction(
    session: Session,
    fault_id: int,
    policy: ReproductionPolicy,
    *,
    actor: str,
    rig_id: int | None = None,
    firmware_id: int | None = None,
    seed: str | None = None,
    network_profile: str | None = None,
) -> Reproduction:
    """Store k of n reruns and the verdict; the fault shows the latest measurement."""
    if policy.runs == 0:
        raise TestError("a reproduction record needs at least one rerun")
    fault = _get(session, fault_id)
    rec = Reproduction(
        fault_id=fault_id,
        rig_id=rig_id,
        firmware_id=firmware_id,
        seed=seed,
        network_profile=network_profile,
        runs=policy.runs,
        hits=policy.hits,
        rate=policy.rate,
        verdict=policy.verdict,
        recorded_at=utcnow(),
    )
    session.add(rec)
    fault.repro_hits, fault.repro_runs = policy.hits, policy.runs
    fault.reproduction_rate, fault.reproducible = policy.rate, policy.verdict
    fault.updated_at = utcnow()
    session.flush()
    append_audit(
        session, actor=actor, action="fault.reproduction", entity="fault", entity_id=fault_id, detail=policy.as_record()
    )
    return rec
