"""Append-only audit log chained by hashes.

Each entry's hash covers the previous entry's hash and its own content, so an edited, removed or
reordered entry breaks the chain at that point and :func:`verify_audit` names where. The database
refuses UPDATE and DELETE on the table (triggers); concurrent writers meet at the unique ``seq``
and retry, so the chain never forks.

Example::

    check = verify_audit(session)
    assert check.ok, check.problem
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lab.rma.models import AuditEntry, utcnow

GENESIS = "0" * 64


def _canonical(detail: Any) -> str:
    return json.dumps(detail, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))


def entry_hash(
    prev_hash: str, seq: int, at: dt.datetime, actor: str, action: str, entity: str, entity_id: int | None, detail: str
) -> str:
    """The hash an entry must carry, from its predecessor's hash and its own fields."""
    body = _canonical([prev_hash, seq, at.isoformat(), actor, action, entity, entity_id, detail])
    return hashlib.sha256(body.encode()).hexdigest()


def append_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: int | None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add one entry at the end of the chain (inside the caller's transaction)."""
    last = session.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)).first()
    seq = last.seq + 1 if last else 1
    prev = last.hash if last else GENESIS
    at = utcnow()
    text = _canonical(detail or {})
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=entity_id,
        detail=text,
        prev_hash=prev,
        hash=entry_hash(prev, seq, at, actor, action, entity, entity_id, text),
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class AuditCheck:
    """Result of :func:`verify_audit`: truthy when the whole chain holds."""

    ok: bool
    entries: int
    bad_seq: int | None = None
    problem: str = ""

    def __bool__(self) -> bool:
        return self.ok


def verify_audit(session: Session) -> AuditCheck:
    """Walk the chain from the first entry; report the first entry that does not hold."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    for e in session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars():
        if e.seq != expected_seq:
            return AuditCheck(False, count, e.seq, f"entry {expected_seq} is missing (next is {e.seq})")
        if e.prev_hash != prev:
            return AuditCheck(False, count, e.seq, f"entry {e.seq} does not follow entry {e.seq - 1}")
        if e.hash != entry_hash(prev, e.seq, e.at, e.actor, e.action, e.entity, e.entity_id, e.detail):
            return AuditCheck(False, count, e.seq, f"entry {e.seq} was altered (hash does not match its content)")
        prev = e.hash
        expected_seq += 1
        count += 1
    return AuditCheck(True, count)
