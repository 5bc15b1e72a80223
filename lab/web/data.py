"""Read side of the web pages: what :mod:`lab.rma.queries` does not already answer.

Fault list filters (kind, title search, reproduction rate, pages), occurrences per firmware version
of one fault, test runs, the audit log, photos and artifacts of a case. Plain dicts, bounded
listings, each on an index.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from lab.rma import queries
from lab.rma.models import (
    Artifact,
    AuditEntry,
    Device,
    Evidence,
    Fault,
    FaultSignature,
    FirmwareBuild,
    Occurrence,
    OccurrenceArtifact,
    Reproduction,
    Rig,
    TestRun,
)
from lab.rma.queries import fault_dict

PAGE = 50


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def list_faults(
    session: Session,
    *,
    status: str | None = None,
    kind: str | None = None,
    model: str | None = None,
    firmware: str | None = None,
    since: dt.datetime | None = None,
    min_rate: float | None = None,
    q: str | None = None,
    page: int = 1,
    per_page: int = PAGE,
) -> dict[str, Any]:
    """One page of faults, most recently seen first, and whether a next page exists."""
    query: Select[Any] = select(Fault)
    if status:
        query = query.where(Fault.status == status)
    if kind:
        query = query.where(Fault.kind == kind)
    if since:
        query = query.where(Fault.last_seen >= since)
    if min_rate is not None:
        query = query.where(Fault.reproduction_rate >= min_rate)
    if q:
        query = query.where(Fault.title.ilike(_like(q), escape="\\"))
    if firmware:
        # EXISTS per fault on the (fault_id, firmware_id, ...) index: newest faults are probed first and the
        # page stops at 51, instead of collecting every occurrence of that firmware (tens of thousands)
        builds = select(FirmwareBuild.id).where(FirmwareBuild.version == firmware).scalar_subquery()
        query = query.where(
            select(Occurrence.id).where(Occurrence.fault_id == Fault.id, Occurrence.firmware_id.in_(builds)).exists()
        )
    if model:  # the same way: stops at the fault's first occurrence on a device of that model
        devices = select(Device.id).where(Device.model == model).scalar_subquery()
        query = query.where(
            select(Occurrence.id).where(Occurrence.fault_id == Fault.id, Occurrence.device_id.in_(devices)).exists()
        )
    page = max(1, page)
    query = query.order_by(Fault.last_seen.desc(), Fault.id.desc()).offset((page - 1) * per_page).limit(per_page + 1)
    found: list[Fault] = list(session.execute(query).scalars())
    rows = [fault_dict(fault) for fault in found]
    return {"faults": rows[:per_page], "page": page, "has_next": len(rows) > per_page}


def filter_choices(session: Session) -> dict[str, list[str]]:
    """Values offered by the fault filters (kinds, models, firmware versions, statuses)."""
    return {
        "kinds": sorted(k for k in session.execute(select(Fault.kind).distinct()).scalars() if k),
        "models": sorted(m for m in session.execute(select(Device.model).distinct()).scalars() if m),
        "firmware": sorted(v for v in session.execute(select(FirmwareBuild.version).distinct()).scalars() if v),
        "statuses": ["open", "fixed", "invalid", "duplicate"],
    }


def per_firmware(session: Session, fault_id: int) -> list[dict[str, Any]]:
    """Occurrences of one fault per firmware build (most first), from the covering index."""
    counts = session.execute(
        select(Occurrence.firmware_id, func.count())
        .where(Occurrence.fault_id == fault_id)
        .group_by(Occurrence.firmware_id)
    ).all()
    ids = [c[0] for c in counts if c[0] is not None]
    builds = {b.id: b for b in session.execute(select(FirmwareBuild).where(FirmwareBuild.id.in_(ids))).scalars()}
    out = []
    for fw_id, n in counts:
        b = builds.get(fw_id) if fw_id is not None else None
        out.append(
            {"firmware": b.version if b else None, "build_id": (b.build_id or None) if b else None, "occurrences": n}
        )
    return sorted(out, key=lambda r: -r["occurrences"])


def fault_detail(session: Session, fault_id: int, *, occurrences: int = 20) -> dict[str, Any] | None:
    """What the fault page shows: the fault, signatures, reproduction records, occurrences per firmware,
    distinct rigs/devices/builds, linked faults, and the newest occurrences with their artifacts.

    Same content as :func:`lab.rma.queries.get_fault` (what ``stblab rma fault`` prints) plus the
    per-firmware table, but its counts come from one covering index instead of the occurrence rows,
    which keeps a fault with 100,000 occurrences fast (benchmarks/web.md)."""
    f = session.get(Fault, fault_id)
    if f is None:
        return None
    out = fault_dict(f)
    out["signatures"] = [
        {"title": s.title, "hash": s.hash, "algorithm_version": s.algorithm_version, "role": s.role}
        for s in session.execute(
            select(FaultSignature).where(FaultSignature.fault_id == fault_id).order_by(FaultSignature.id)
        ).scalars()
    ]
    out["reproductions"] = [
        {
            "runs": r.runs,
            "hits": r.hits,
            "rate": r.rate,
            "verdict": r.verdict,
            "seed": r.seed,
            "recorded_at": r.recorded_at.isoformat(),
        }
        for r in session.execute(
            select(Reproduction).where(Reproduction.fault_id == fault_id).order_by(Reproduction.id)
        ).scalars()
    ]
    # DISTINCT in a subquery: PostgreSQL hashes it (count(DISTINCT) sorts), 2-3x faster on 100,000 rows
    rigs, devices = (
        session.execute(
            select(func.count()).select_from(select(col).where(Occurrence.fault_id == fault_id).distinct().subquery())
        ).scalar_one()
        for col in (Occurrence.rig_id, Occurrence.device_id)
    )
    out["per_firmware"] = per_firmware(session, fault_id)
    out["rigs"], out["devices"] = int(rigs), int(devices)
    out["firmware_builds"] = sum(1 for r in out["per_firmware"] if r["firmware"] is not None)
    out["linked"] = linked_faults(session, fault_id)
    occs = queries.list_occurrences(session, fault_id=fault_id, limit=occurrences)
    arts = occurrence_artifacts(session, [o["id"] for o in occs])
    for o in occs:
        o["artifacts"] = arts.get(o["id"], [])
    out["recent_occurrences"] = occs
    return out


def occurrence_artifacts(session: Session, occurrence_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The evidence files of some occurrences, by occurrence id."""
    out: dict[int, list[dict[str, Any]]] = {}
    if not occurrence_ids:
        return out
    rows = session.execute(
        select(
            OccurrenceArtifact.occurrence_id,
            OccurrenceArtifact.name,
            Artifact.sha256,
            Artifact.size,
            Artifact.media_type,
        )
        .join(Artifact, Artifact.id == OccurrenceArtifact.artifact_id)
        .where(OccurrenceArtifact.occurrence_id.in_(occurrence_ids))
        .order_by(OccurrenceArtifact.name)
    )
    for oid, name, sha, size, media in rows:
        out.setdefault(oid, []).append({"name": name, "sha256": sha, "size": size, "media_type": media})
    return out


def linked_faults(session: Session, fault_id: int) -> list[dict[str, Any]]:
    """Faults marked duplicates of this one, and the one it duplicates."""
    f = session.get(Fault, fault_id)
    if f is None:
        return []
    ids = select(Fault).where(or_(Fault.duplicate_of_id == fault_id, Fault.id == (f.duplicate_of_id or -1)))
    return [
        {
            "id": x.id,
            "title": x.title,
            "status": x.status,
            "relation": "duplicate of this" if x.duplicate_of_id == fault_id else "this duplicates it",
        }
        for x in session.execute(ids.limit(100)).scalars()
    ]


def list_runs(
    session: Session, *, rig: str | None = None, outcome: str | None = None, page: int = 1, per_page: int = PAGE
) -> dict[str, Any]:
    """Test runs recorded in the database (newest first), each with the fault it was filed under."""
    query = (
        select(
            TestRun.id,
            TestRun.run_key,
            TestRun.test_id,
            TestRun.outcome,
            TestRun.started,
            TestRun.ended,
            Rig.name,
            Device.serial,
            FirmwareBuild.version,
            Occurrence.fault_id,
        )
        .join(Rig, Rig.id == TestRun.rig_id)
        .join(Device, Device.id == TestRun.device_id)
        .outerjoin(FirmwareBuild, FirmwareBuild.id == TestRun.firmware_id)
        .outerjoin(Occurrence, Occurrence.test_run_id == TestRun.id)
    )
    if rig:
        query = query.where(Rig.name == rig)
    if outcome:
        query = query.where(TestRun.outcome == outcome)
    page = max(1, page)
    query = query.order_by(TestRun.id.desc()).offset((page - 1) * per_page).limit(per_page + 1)
    rows = [
        {
            "id": r[0],
            "run_key": r[1],
            "test_id": r[2],
            "outcome": r[3],
            "started": r[4].isoformat() if r[4] else None,
            "ended": r[5].isoformat() if r[5] else None,
            "rig": r[6],
            "device": r[7],
            "firmware": r[8],
            "fault_id": r[9],
        }
        for r in session.execute(query)
    ]
    return {"runs": rows[:per_page], "page": page, "has_next": len(rows) > per_page}


def audit_page(
    session: Session, *, entity: str | None = None, entity_id: int | None = None, page: int = 1, per_page: int = 100
) -> dict[str, Any]:
    """Audit entries, newest first."""
    query = select(AuditEntry)
    if entity:
        query = query.where(AuditEntry.entity == entity)
    if entity_id is not None:
        query = query.where(AuditEntry.entity_id == entity_id)
    page = max(1, page)
    query = query.order_by(AuditEntry.seq.desc()).offset((page - 1) * per_page).limit(per_page + 1)
    rows = [
        {
            "seq": e.seq,
            "at": e.at.isoformat(),
            "actor": e.actor,
            "action": e.action,
            "entity": e.entity,
            "entity_id": e.entity_id,
            "detail": json.loads(e.detail or "{}"),
            "hash": e.hash,
        }
        for e in session.execute(query).scalars()
    ]
    return {"entries": rows[:per_page], "page": page, "has_next": len(rows) > per_page}


def artifacts_by_id(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Artifact rows by id (for evidence that points at a file)."""
    if not ids:
        return {}
    rows = session.execute(select(Artifact).where(Artifact.id.in_(ids))).scalars()
    return {a.id: {"sha256": a.sha256, "size": a.size, "media_type": a.media_type, "path": a.path} for a in rows}


def artifact_known(session: Session, sha256: str) -> dict[str, Any] | None:
    """The artifact row of a content hash (None when the database does not know it)."""
    a = session.execute(select(Artifact).where(Artifact.sha256 == sha256)).scalar_one_or_none()
    return None if a is None else {"sha256": a.sha256, "media_type": a.media_type, "path": a.path, "size": a.size}


def case_photos(session: Session, case_id: int) -> list[dict[str, Any]]:
    """Photos of the unit taken at reception (evidence of kind ``photo`` pointing at an artifact)."""
    rows = session.execute(
        select(Evidence.id, Evidence.value, Artifact.sha256, Artifact.media_type)
        .join(Artifact, Artifact.id == Evidence.artifact_id)
        .where(Evidence.case_id == case_id, Evidence.kind == "photo")
        .order_by(Evidence.id)
    )
    return [{"evidence_id": r[0], "name": r[1], "sha256": r[2], "media_type": r[3]} for r in rows]


def rigs_in_db(session: Session) -> list[str]:
    """Rig names the database knows (runs were filed from them)."""
    return sorted(session.execute(select(Rig.name)).scalars())


def dashboard(session: Session) -> dict[str, Any]:
    """Figures of the dashboard: faults seen and fixed per firmware, verdict mix per model and month,
    reproduction rates. Faults seen per firmware reads the (fault_id, firmware_id) index only."""
    from lab.firmware.version import FirmwareVersion
    from lab.rma.cases import current_verdict
    from lab.rma.models import RmaCase

    seen: dict[str, int] = dict(
        session.execute(
            select(FirmwareBuild.version, func.count(func.distinct(Occurrence.fault_id)))
            .join(FirmwareBuild, FirmwareBuild.id == Occurrence.firmware_id)
            .group_by(FirmwareBuild.version)
        ).all()
    )
    fixed: dict[str, int] = {
        str(version): int(n)
        for version, n in session.execute(
            select(Fault.fixed_in, func.count()).where(Fault.fixed_in.is_not(None)).group_by(Fault.fixed_in)
        )
    }

    def order(v: str) -> tuple[int, Any]:
        try:
            return (0, FirmwareVersion(v))
        except ValueError:
            return (1, v)

    versions = sorted(set(seen) | set(fixed), key=order)[-30:]
    per_fw = [{"version": v, "seen": int(seen.get(v, 0)), "fixed": int(fixed.get(v, 0))} for v in versions]
    mix: dict[tuple[str, str], dict[str, int]] = {}
    for case_id, model, created in session.execute(
        select(RmaCase.id, Device.model, RmaCase.created_at)
        .join(Device, Device.id == RmaCase.device_id)
        .order_by(RmaCase.id.desc())
        .limit(5000)
    ):
        v = current_verdict(session, case_id)
        if v is None:
            continue
        key = (model or "?", created.strftime("%Y-%m"))
        mix.setdefault(key, {})[v.verdict] = mix.setdefault(key, {}).get(v.verdict, 0) + 1
    verdict_mix = [
        {"model": m, "month": mo, "counts": c, "total": sum(c.values())} for (m, mo), c in sorted(mix.items())
    ]
    buckets = [0] * 10
    unmeasured = 0
    for rate in session.execute(select(Fault.reproduction_rate).where(Fault.status == "open")).scalars():
        if rate is None:
            unmeasured += 1
        else:
            buckets[min(9, int(rate * 10))] += 1
    return {"per_firmware": per_fw, "verdict_mix": verdict_mix, "rates": buckets, "unmeasured": unmeasured}
