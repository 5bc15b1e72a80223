"""Re-titling stored faults with the current fingerprint algorithm (``stblab rma retitle``).

Faults filed under an older algorithm carry its titles: under v2 every oops that ended in a panic
became one "kernel panic: Fatal exception" fault. :func:`plan` recomputes the title of every stored
occurrence from its stored console excerpt and says what would change:

* a fault whose occurrences get different titles **splits**: the largest group keeps the fault (and
  its id, status and old signatures), each other group moves to the fault that already carries its
  title, or to a new fault;
* faults whose occurrences get one title **merge** into the one that already carries the title (else
  the one with most occurrences); the others become duplicates of it, so an old hash that still
  names them leads there;
* a fault that keeps all its occurrences only gets the new title.

:func:`apply` carries the plan out in one transaction with one audit entry. Nothing is deleted:
old signatures stay with their faults, so every link an old hash made still holds. Occurrences
whose excerpt shows no crash (a failed check, an explicit title) and faults marked invalid are
left alone. Running it again changes nothing.

Example::

    with store.session() as s, s.begin():
        p = plan(s)
        print(p.summary())
        apply(s, p, actor="alice")
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from lab.rma.audit import append_audit
from lab.rma.fingerprint import ALGORITHM_VERSION, Fingerprint, fingerprint_log
from lab.rma.models import Fault, FaultSignature, Occurrence, utcnow

_LOG_KINDS_SKIPPED = {"check", "titled"}  # an explicit title or a check: not from a console


def record_retitle(session: Session, *, actor: str, fault_id: int | None, detail: dict[str, Any]) -> None:
    """The one audit entry of a re-title (a retitle run, or a v2 fault taken over by its v3 successor)."""
    append_audit(session, actor=actor, action="faults.retitled", entity="fault", entity_id=fault_id, detail=detail)


@dataclass
class Group:
    """Occurrences that get one title: where they are now and the fault they go to."""

    fingerprint: Fingerprint
    occurrences: list[int] = field(default_factory=list)
    from_faults: Counter[int] = field(default_factory=Counter)
    target: int | None = None  # None: a new fault

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.fingerprint.title,
            "corrupted": self.fingerprint.corrupted,
            "fingerprint": self.fingerprint.hash,
            "occurrences": len(self.occurrences),
            "from_faults": dict(sorted(self.from_faults.items())),
            "to_fault": self.target,
        }


@dataclass
class Plan:
    """What a retitle would do (see the module docstring)."""

    groups: list[Group]
    titles: dict[int, str]  # fault id -> its current title
    examined: int = 0

    @property
    def changes(self) -> list[Group]:
        """Groups that move occurrences or give a fault a new title."""
        return [
            g
            for g in self.groups
            if g.target is None or set(g.from_faults) != {g.target} or self.titles.get(g.target) != g.fingerprint.title
        ]

    def splits(self) -> dict[int, list[Group]]:
        """Faults whose occurrences go to more than one fault."""
        by_fault: dict[int, list[Group]] = defaultdict(list)
        for g in self.groups:
            for fid in g.from_faults:
                by_fault[fid].append(g)
        return {fid: gs for fid, gs in sorted(by_fault.items()) if len(gs) > 1}

    def merges(self) -> list[Group]:
        """Groups gathered from more than one fault."""
        return [g for g in self.groups if len(g.from_faults) > 1]

    def as_dict(self) -> dict[str, Any]:
        return {
            "algorithm_version": ALGORITHM_VERSION,
            "occurrences_examined": self.examined,
            "changes": [g.as_dict() for g in self.changes],
            "splits": {str(fid): [g.fingerprint.title for g in gs] for fid, gs in self.splits().items()},
            "merges": [
                {"into": g.target, "faults": sorted(g.from_faults), "title": g.fingerprint.title} for g in self.merges()
            ],
        }


def plan(session: Session) -> Plan:
    """What re-titling every stored occurrence with the current algorithm would change."""
    faults = {f.id: f for f in session.execute(select(Fault)).scalars()}
    rows = session.execute(select(Occurrence.id, Occurrence.fault_id, Occurrence.excerpt).order_by(Occurrence.id))
    groups: dict[str, Group] = {}
    examined = 0
    for occ_id, fault_id, excerpt in rows:
        fault = faults.get(fault_id)
        if fault is None or fault.status == "invalid" or fault.kind in _LOG_KINDS_SKIPPED or not excerpt:
            continue
        fp = fingerprint_log(excerpt)
        if fp is None:
            continue
        examined += 1
        g = groups.setdefault(fp.hash, Group(fp))
        g.occurrences.append(occ_id)
        g.from_faults[fault_id] += 1
    owners = dict(
        session.execute(
            select(FaultSignature.hash, FaultSignature.fault_id).where(
                FaultSignature.algorithm_version == ALGORITHM_VERSION, FaultSignature.hash.in_(list(groups))
            )
        ).all()
    )
    taken: set[int] = set()
    # Largest groups choose first: a fault keeps the bug that holds most of its occurrences.
    for g in sorted(groups.values(), key=lambda g: (-len(g.occurrences), g.fingerprint.title)):
        owner = owners.get(g.fingerprint.hash)
        if owner is not None and owner not in taken:
            g.target = owner
        else:
            for fid, _n in sorted(g.from_faults.items(), key=lambda kv: (-kv[1], kv[0])):
                if fid not in taken and faults[fid].status != "duplicate":
                    g.target = fid
                    break
        if g.target is not None:
            taken.add(g.target)
    ordered = sorted(groups.values(), key=lambda g: (g.target is None, g.target or 0, g.fingerprint.title))
    return Plan(ordered, {fid: f.title for fid, f in faults.items()}, examined)


def apply(session: Session, p: Plan, *, actor: str) -> dict[str, Any]:
    """Carry out a plan made in the same transaction; returns what was done (also the audit detail)."""
    now = utcnow()
    done: dict[str, Any] = {"algorithm_version": ALGORITHM_VERSION, "retitled": [], "moved": 0, "created": []}
    gone: defaultdict[int, Counter[int]] = defaultdict(Counter)  # fault -> where its occurrences went
    for g in p.changes:
        fp = g.fingerprint
        if g.target is None:
            source = session.get(Fault, max(g.from_faults, key=lambda f: g.from_faults[f]))
            assert source is not None
            new = Fault(
                title=fp.title,
                kind=fp.kind,
                status="open" if source.status == "duplicate" else source.status,
                regression=source.regression,
                fixed_in=source.fixed_in,
                fixed_in_key=source.fixed_in_key,
                first_seen=now,
                last_seen=now,
                occurrence_count=0,
                algorithm_version=fp.algorithm_version,
                created_at=now,
                updated_at=now,
            )
            session.add(new)
            session.flush()
            g.target = new.id
            done["created"].append({"fault": new.id, "title": fp.title, "split_from": sorted(g.from_faults)})
        target = session.get(Fault, g.target)
        assert target is not None
        if target.title != fp.title or target.algorithm_version != fp.algorithm_version:
            done["retitled"].append({"fault": target.id, "from": target.title, "to": fp.title})
            target.title, target.kind, target.algorithm_version = fp.title, fp.kind, fp.algorithm_version
            target.updated_at = now
        _add_signatures(session, target.id, fp, now)
        session.execute(
            update(Occurrence)
            .where(Occurrence.id.in_(g.occurrences))
            .values(fault_id=target.id, title=fp.title, signature_hash=fp.hash)
        )
        for fid, n in g.from_faults.items():
            if fid != target.id:
                done["moved"] += n
                gone[fid][target.id] += n
    touched = {g.target for g in p.groups if g.target is not None} | set(gone)
    for fid in sorted(touched):
        _recount(session, fid, now)
    for fid, where in sorted(gone.items()):
        into = where.most_common(1)[0][0]
        fault = session.get(Fault, fid)
        if fault is not None and fault.occurrence_count == 0 and fault.status != "duplicate":
            fault.status, fault.duplicate_of_id, fault.updated_at = "duplicate", into, now
            done.setdefault("merged", []).append({"fault": fid, "into": into})
    done["splits"] = {str(k): [g.fingerprint.title for g in v] for k, v in p.splits().items()}
    if done["retitled"] or done["moved"] or done["created"]:
        record_retitle(session, actor=actor, fault_id=None, detail=done)
    session.flush()
    return done


def _add_signatures(session: Session, fault_id: int, fp: Fingerprint, now: Any) -> None:
    hashes = [sig.hash for sig in fp.signatures]
    have = set(
        session.execute(
            select(FaultSignature.hash).where(
                FaultSignature.algorithm_version == fp.algorithm_version, FaultSignature.hash.in_(hashes)
            )
        ).scalars()
    )
    for sig in fp.signatures:
        if sig.hash not in have:
            session.add(
                FaultSignature(
                    fault_id=fault_id,
                    algorithm_version=sig.algorithm_version,
                    hash=sig.hash,
                    title=sig.title,
                    role=sig.role,
                    created_at=now,
                )
            )
    session.flush()


def _recount(session: Session, fault_id: int, now: Any) -> None:
    """A fault's counters and first/last seen, from its occurrence rows."""
    n, first, last = session.execute(
        select(func.count(Occurrence.id), func.min(Occurrence.seen_at), func.max(Occurrence.seen_at)).where(
            Occurrence.fault_id == fault_id
        )
    ).one()
    values: dict[str, Any] = {"occurrence_count": n, "updated_at": now}
    if n:
        values.update(first_seen=first, last_seen=last)
    session.execute(update(Fault).where(Fault.id == fault_id).values(**values))
