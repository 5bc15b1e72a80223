"""Read side of the RMA database: faults, a fault, occurrences, a device's history, cases, a case.

Each function returns plain dicts (what ``--json`` prints). Filters: ``status``, ``firmware``
(version string), ``model``, ``since`` (datetime, UTC). Listings are newest first and bounded by
``limit``; each uses an index (``occurrences (fault_id, seen_at)``, ``(device_id, seen_at)``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import ARRAY, Integer, Select, any_, bindparam, func, select
from sqlalchemy.orm import Session

from lab.rma.cases import current_verdict
from lab.rma.models import (
    Artifact,
    Device,
    Evidence,
    Fault,
    FaultSignature,
    FirmwareBuild,
    Occurrence,
    OccurrenceArtifact,
    Reproduction,
    Rig,
    RmaCase,
    TestRun,
    Verdict,
    VerdictEvidence,
)


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def fault_dict(f: Fault) -> dict[str, Any]:
    return {
        "id": f.id,
        "title": f.title,
        "kind": f.kind,
        "status": f.status,
        "regression": f.regression,
        "fixed_in": f.fixed_in,
        "duplicate_of": f.duplicate_of_id,
        "first_seen": _iso(f.first_seen),
        "last_seen": _iso(f.last_seen),
        "occurrences": f.occurrence_count,
        "reproduction": None
        if f.repro_runs is None
        else {"hits": f.repro_hits, "runs": f.repro_runs, "rate": f.reproduction_rate, "verdict": f.reproducible},
        "algorithm_version": f.algorithm_version,
    }


def list_faults(
    session: Session,
    *,
    status: str | None = None,
    firmware: str | None = None,
    model: str | None = None,
    since: dt.datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Faults, most recently seen first; firmware/model filter on where they occurred."""
    q = select(Fault)
    if status:
        q = q.where(Fault.status == status)
    if since:
        q = q.where(Fault.last_seen >= since)
    if firmware or model:
        sub = select(Occurrence.fault_id)
        if firmware:
            sub = sub.join(FirmwareBuild, FirmwareBuild.id == Occurrence.firmware_id).where(
                FirmwareBuild.version == firmware
            )
        if model:
            sub = sub.join(Device, Device.id == Occurrence.device_id).where(Device.model == model)
        q = q.where(Fault.id.in_(sub))
    q = q.order_by(Fault.last_seen.desc(), Fault.id.desc()).limit(limit)
    return [fault_dict(f) for f in session.execute(q).scalars()]


_OCC_COLUMNS = (
    Occurrence.id,
    Occurrence.occurrence_key,
    Occurrence.fault_id,
    Occurrence.seen_at,
    Occurrence.title,
    Occurrence.symptom,
    Occurrence.message,
    Occurrence.excerpt,
    Occurrence.regression,
    Device.serial,
    Device.model,
    Rig.name,
    FirmwareBuild.version,
    FirmwareBuild.build_id,
    Occurrence.test_run_id,
)
_RUN_COLUMNS = (TestRun.id, TestRun.test_id, TestRun.seed, TestRun.params, TestRun.network_profile, TestRun.ended)


def _occurrence_query(dialect: str = "postgresql") -> Select[*tuple[Any, ...]]:
    # Plain columns, not ORM entities: listing a device's thousand occurrences stays cheap. Test runs
    # are fetched by primary key afterwards (PostgreSQL otherwise may hash-join a full scan of them).
    # SQLite's planner looks test runs up by primary key inside the join.
    if dialect != "postgresql":
        cols = (*_OCC_COLUMNS[:-1], *_RUN_COLUMNS[1:], Occurrence.test_run_id)
        return (
            select(*cols)
            .join(Device, Device.id == Occurrence.device_id)
            .join(Rig, Rig.id == Occurrence.rig_id)
            .join(TestRun, TestRun.id == Occurrence.test_run_id)
            .outerjoin(FirmwareBuild, FirmwareBuild.id == Occurrence.firmware_id)
        )
    return (
        select(*_OCC_COLUMNS)
        .join(Device, Device.id == Occurrence.device_id)
        .join(Rig, Rig.id == Occurrence.rig_id)
        .outerjoin(FirmwareBuild, FirmwareBuild.id == Occurrence.firmware_id)
    )


def _with_runs(session: Session, rows: list[Any]) -> list[dict[str, Any]]:
    if session.get_bind().dialect.name != "postgresql":
        return [_occ_dict(tuple(r)[:-1]) for r in rows]  # SQLite joined them already
    runs: dict[int, tuple[Any, ...]] = {}
    ids = [r[-1] for r in rows]
    if ids:
        # One array parameter: planning a 1000-way IN list costs more than the lookup itself.
        where = TestRun.id == any_(bindparam("run_ids", ids, type_=ARRAY(Integer)))
        for run in session.execute(select(*_RUN_COLUMNS).where(where)):
            runs[run[0]] = tuple(run)[1:]
    return [_occ_dict(tuple(r)[:-1] + runs.get(r[-1], (None,) * 5)) for r in rows]


def _occ_dict(row: Any) -> dict[str, Any]:
    # Positional unpacking: named attribute access on a Row costs more than the query itself.
    (
        oid,
        key,
        fault_id,
        seen_at,
        title,
        symptom,
        message,
        excerpt,
        regression,
        serial,
        model,
        rig,
        version,
        build_id,
        test_id,
        seed,
        params,
        profile,
        ended,
    ) = tuple(row)
    return {
        "id": oid,
        "key": key,
        "fault_id": fault_id,
        "seen_at": seen_at.isoformat() if seen_at else None,
        "ended": ended.isoformat() if ended else None,
        "title": title,
        "symptom": symptom,
        "message": message,
        "excerpt": excerpt,
        "regression": bool(regression),
        "device": serial,
        "model": model,
        "rig": rig,
        "firmware": version,
        "build_id": build_id or None,
        "test_id": test_id,
        "seed": seed,
        "params": json.loads(params) if params and params != "{}" else {},
        "network_profile": json.loads(profile) if profile else None,
    }


def list_occurrences(
    session: Session,
    *,
    fault_id: int | None = None,
    device: str | None = None,
    firmware: str | None = None,
    model: str | None = None,
    since: dt.datetime | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Occurrences, newest first (of one fault, one device, a firmware, a model, since a time)."""
    q = _occurrence_query(session.get_bind().dialect.name)
    if fault_id is not None:
        q = q.where(Occurrence.fault_id == fault_id)
    if device:
        dev_id = session.execute(select(Device.id).where(Device.serial == device)).scalar()
        if dev_id is None:
            return []
        q = q.where(Occurrence.device_id == dev_id)
    if firmware:
        q = q.where(FirmwareBuild.version == firmware)
    if model:
        q = q.where(Device.model == model)
    if since:
        q = q.where(Occurrence.seen_at >= since)
    if status:
        q = q.join(Fault, Fault.id == Occurrence.fault_id).where(Fault.status == status)
    q = q.order_by(Occurrence.seen_at.desc(), Occurrence.id.desc()).limit(limit)
    return _with_runs(session, list(session.execute(q)))


def get_fault(session: Session, fault_id: int, *, occurrences: int = 20) -> dict[str, Any] | None:
    """One fault with its signatures, reproduction records, recent occurrences and their artifacts."""
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
            "recorded_at": _iso(r.recorded_at),
        }
        for r in session.execute(
            select(Reproduction).where(Reproduction.fault_id == fault_id).order_by(Reproduction.id)
        ).scalars()
    ]
    counts = session.execute(
        select(
            func.count(func.distinct(Occurrence.rig_id)),
            func.count(func.distinct(Occurrence.device_id)),
            func.count(func.distinct(Occurrence.firmware_id)),
        ).where(Occurrence.fault_id == fault_id)
    ).one()
    out["rigs"], out["devices"], out["firmware_builds"] = counts
    versions = session.execute(
        select(FirmwareBuild.version)
        .join(Occurrence, Occurrence.firmware_id == FirmwareBuild.id)
        .where(Occurrence.fault_id == fault_id)
        .distinct()
    ).scalars()
    from lab.firmware.version import FirmwareVersion

    def order(version: str) -> tuple[int, Any]:
        try:
            return (0, FirmwareVersion(version))
        except ValueError:  # filed as the box reported it, not a version: listed after the real ones
            return (1, version)

    out["firmware_versions"] = sorted(set(versions), key=order)
    occs = list_occurrences(session, fault_id=fault_id, limit=occurrences)
    arts = _artifacts_for(session, [o["id"] for o in occs])
    for o in occs:
        o["artifacts"] = arts.get(o["id"], [])
    out["recent_occurrences"] = occs
    return out


def _artifacts_for(session: Session, occurrence_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
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
            Artifact.path,
        )
        .join(Artifact, Artifact.id == OccurrenceArtifact.artifact_id)
        .where(OccurrenceArtifact.occurrence_id.in_(occurrence_ids))
    )
    for r in rows:
        out.setdefault(r.occurrence_id, []).append(
            {"name": r.name, "sha256": r.sha256, "size": r.size, "media_type": r.media_type, "path": r.path}
        )
    return out


def device_history(session: Session, serial: str, *, limit: int = 1000) -> list[dict[str, Any]]:
    """Everything filed against one device, newest first."""
    return list_occurrences(session, device=serial, limit=limit)


def _case_dict(c: RmaCase, serial: str, model: str) -> dict[str, Any]:
    return {
        "id": c.id,
        "device": serial,
        "model": model,
        "complaint": c.complaint,
        "received": _iso(c.received),
        "state": c.state,
        "created_at": _iso(c.created_at),
        "updated_at": _iso(c.updated_at),
    }


def list_cases(
    session: Session,
    *,
    state: str | None = None,
    model: str | None = None,
    since: dt.datetime | None = None,
    device: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """RMA cases, newest first, each with its current verdict."""
    q = select(RmaCase, Device.serial, Device.model).join(Device, Device.id == RmaCase.device_id)
    if state:
        q = q.where(RmaCase.state == state)
    if model:
        q = q.where(Device.model == model)
    if device:
        q = q.where(Device.serial == device)
    if since:
        q = q.where(RmaCase.created_at >= since)
    out = []
    for c, serial, mdl in session.execute(q.order_by(RmaCase.id.desc()).limit(limit)):
        d = _case_dict(c, serial, mdl)
        v = current_verdict(session, c.id)
        d["verdict"] = v.verdict if v else None
        out.append(d)
    return out


def _verdict_dict(session: Session, v: Verdict) -> dict[str, Any]:
    ev_ids = list(
        session.execute(
            select(VerdictEvidence.evidence_id)
            .where(VerdictEvidence.verdict_id == v.id)
            .order_by(VerdictEvidence.evidence_id)
        ).scalars()
    )
    return {
        "id": v.id,
        "verdict": v.verdict,
        "rule_set_version": v.rule_set_version,
        "justification": v.justification,
        "decided_by": v.decided_by,
        "override_reason": v.override_reason,
        "supersedes": v.supersedes_id,
        "created_at": _iso(v.created_at),
        "evidence": ev_ids,
    }


def get_case(session: Session, case_id: int) -> dict[str, Any] | None:
    """One case: device, state, current verdict with its evidence, verdict history, all evidence."""
    row = session.execute(
        select(RmaCase, Device).join(Device, Device.id == RmaCase.device_id).where(RmaCase.id == case_id)
    ).first()
    if row is None:
        return None
    c, d = row
    out = _case_dict(c, d.serial, d.model)
    out["device_info"] = {
        "serial": d.serial,
        "model": d.model,
        "hardware_revision": d.hardware_revision,
        "production_lot": d.production_lot,
        "warranty_end": _iso(d.warranty_end),
    }
    evidence = [
        {
            "id": e.id,
            "kind": e.kind,
            "source": e.source,
            "value": e.value,
            "detail": json.loads(e.detail or "{}"),
            "occurrence_id": e.occurrence_id,
            "artifact_id": e.artifact_id,
            "collected_at": _iso(e.collected_at),
        }
        for e in session.execute(select(Evidence).where(Evidence.case_id == case_id).order_by(Evidence.id)).scalars()
    ]
    out["evidence"] = evidence
    history = [
        _verdict_dict(session, v)
        for v in session.execute(select(Verdict).where(Verdict.case_id == case_id).order_by(Verdict.id)).scalars()
    ]
    out["verdicts"] = history
    cur = current_verdict(session, case_id)
    out["verdict"] = _verdict_dict(session, cur) if cur else None
    if cur is not None:
        used = set(out["verdict"]["evidence"])
        out["verdict"]["evidence_rows"] = [e for e in evidence if e["id"] in used]
    out["device_faults"] = [
        {
            "occurrence_id": o["id"],
            "fault_id": o["fault_id"],
            "title": o["title"],
            "seen_at": o["seen_at"],
            "firmware": o["firmware"],
            "test_id": o["test_id"],
        }
        for o in list_occurrences(session, device=d.serial, limit=20)
    ]
    return out
