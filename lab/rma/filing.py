"""Filing a device fault: one occurrence stored exactly once, one fault per bug.

``file_fault(engine, report)`` runs one short transaction:

1. an occurrence with the report's key already stored -> return it (``replayed=True``): a retry or a
   journal replay never doubles an occurrence;
2. device, rig and firmware build rows are upserted (``INSERT ... ON CONFLICT DO NOTHING``);
3. the fingerprint's signatures (primary and alternative titles, under this and earlier algorithm
   versions) are looked up; the first that matches names the fault (followed through "duplicate
   of" to the fault that stands). No match -> a new fault with its signatures. Signatures of this
   report the fault did not have yet are added, so the next report with either title meets it.
   A fault found only through an older algorithm's title is this bug's predecessor: it takes the
   current title (audited, old signatures kept) unless the current algorithm already gave it to
   another bug, in which case this report starts its own fault;
4. test run, occurrence and artifact links are inserted; the fault's counters move in one UPDATE;
   a fault fixed in version V seeing an occurrence on firmware >= V (compared as versions) is
   reopened as a regression;
5. the filing is audited (``occurrence.filed``, with the row counters; see :mod:`lab.rma.audit`).

Concurrent filers meet at unique constraints (occurrence key, signature hash, audit sequence);
the loser's transaction rolls back and is retried from the top, where it now finds the winner's
rows. Deadlocks and serialisation failures are retried the same way. Nothing is locked in Python.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, case, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from lab.errors import InfraError
from lab.firmware.version import version_key
from lab.rma.artifacts import StoredArtifact
from lab.rma.audit import append_audit
from lab.rma.fingerprint import ALGORITHM_VERSION, ALGORITHMS, Fingerprint, Signature, fingerprint
from lab.rma.models import (
    Artifact,
    Device,
    Fault,
    FaultSignature,
    FirmwareBuild,
    Occurrence,
    OccurrenceArtifact,
    Rig,
    TestRun,
    utcnow,
)
from lab.rma.report import FaultReport, FilingResult, redact, to_utc
from lab.rma.retitle import record_retitle

log = logging.getLogger("stblab.rma")

MAX_ATTEMPTS = 30


def report_fingerprint(report: FaultReport, algorithm_version: int = ALGORITHM_VERSION) -> Fingerprint:
    """The fingerprint filing gives this report."""
    return fingerprint(
        console_log=report.console_log,
        check=report.check,
        test_id=report.test_id,
        symptom=report.symptom,
        title=report.title,
        algorithm_version=algorithm_version,
    )


def _all_signatures(report: FaultReport) -> tuple[Fingerprint, list[Signature]]:
    """Current fingerprint, and its signatures followed by those of older algorithm versions."""
    current = report_fingerprint(report)
    sigs = list(current.signatures)
    for version in sorted(ALGORITHMS, reverse=True):
        if version != current.algorithm_version:
            sigs.extend(report_fingerprint(report, version).signatures)
    return current, sigs


def _claimed(session: Session, fault_id: int, algorithm_version: int) -> bool:
    """True when ``fault_id`` already carries a signature of ``algorithm_version`` (another bug's)."""
    return (
        session.execute(
            select(FaultSignature.id)
            .where(FaultSignature.fault_id == fault_id, FaultSignature.algorithm_version == algorithm_version)
            .limit(1)
        ).first()
        is not None
    )


def is_transient(exc: BaseException) -> bool:
    """A conflict worth retrying at once: deadlock, serialisation failure, a busy SQLite database."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    if code in {"40001", "40P01", "55P03"}:
        return True
    text = str(orig or exc).lower()
    return "database is locked" in text or "database is busy" in text


def _insert(session: Session, model: type, values: dict[str, Any]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on either backend."""
    dialect = session.get_bind().dialect.name
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model).values(**values)
    session.execute(ins.on_conflict_do_nothing())


def _upsert_id(session: Session, model: Any, key: dict[str, Any], extra: dict[str, Any]) -> int:
    where = [getattr(model, k) == v for k, v in key.items()]
    found = session.execute(select(model.id).where(*where)).scalar()
    if found is None:
        _insert(session, model, {**key, **extra})
        found = session.execute(select(model.id).where(*where)).scalar_one()
    return int(found)


def canonical_fault(session: Session, fault_id: int) -> Fault:
    """The fault that stands for ``fault_id``, following "duplicate of" links (bounded)."""
    fault = session.get(Fault, fault_id)
    assert fault is not None
    for _ in range(20):
        if fault.status != "duplicate" or fault.duplicate_of_id is None:
            break
        nxt = session.get(Fault, fault.duplicate_of_id)
        if nxt is None:
            break
        fault = nxt
    return fault


def file_fault(
    engine: Engine,
    report: FaultReport,
    artifacts: Sequence[StoredArtifact] = (),
    *,
    actor: str = "stblab",
) -> FilingResult:
    """File one occurrence (see module docstring). Raises OperationalError when the database is gone."""
    report.validate()
    key = report.key()
    current, sigs = _all_signatures(report)
    delay = 0.005
    refs: _Refs | None = None
    for _attempt in range(MAX_ATTEMPTS):
        try:
            if refs is None:
                # Device, rig and firmware rows are facts about the lab, not half of a filing: they get
                # their own short transaction, so concurrent filers never wait on each other's new rows.
                # They are never deleted, so their ids are remembered per engine.
                cache: dict[tuple[object, ...], _Refs] = engine.__dict__.setdefault("_stblab_refs", {})
                ref_key = (
                    report.device_serial,
                    report.rig,
                    report.firmware_version,
                    report.firmware_build_id,
                    report.firmware_sha256,
                )
                refs = cache.get(ref_key)
                if refs is None:
                    with Session(engine) as session, session.begin():
                        refs = _references(session, report)
                    if len(cache) < 10_000:
                        cache[ref_key] = refs
            with Session(engine, expire_on_commit=False) as session, session.begin():
                return _file_once(session, report, key, current, sigs, artifacts, actor, refs)
        except IntegrityError:
            pass  # another filer won a unique key: look again
        except OperationalError as exc:
            if not is_transient(exc):
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.5)
    raise InfraError(f"filing {key!r} kept conflicting after {MAX_ATTEMPTS} attempts", instrument="database")


_Refs = tuple[int, int, int | None, str | None]


def _references(session: Session, report: FaultReport) -> _Refs:
    """Upsert the device, rig and firmware build rows; return their ids and the version key."""
    device_id = _upsert_id(
        session,
        Device,
        {"serial": report.device_serial},
        {
            "model": report.model or "",
            "hardware_revision": report.hardware_revision,
            "production_lot": report.production_lot,
            "created_at": utcnow(),
        },
    )
    # A device first seen elsewhere (an RMA case names only its serial) learns what filing knows.
    fill: dict[str, Any] = {}
    if report.model:
        fill["model"] = case((Device.model == "", report.model), else_=Device.model)
    if report.hardware_revision:
        fill["hardware_revision"] = func.coalesce(Device.hardware_revision, report.hardware_revision)
    if report.production_lot:
        fill["production_lot"] = func.coalesce(Device.production_lot, report.production_lot)
    if fill:
        gaps = [Device.model == ""] if report.model else []
        gaps += [Device.hardware_revision.is_(None)] if report.hardware_revision else []
        gaps += [Device.production_lot.is_(None)] if report.production_lot else []
        session.execute(update(Device).where(Device.id == device_id, or_(*gaps)).values(**fill))
    rig_id = _upsert_id(session, Rig, {"name": report.rig}, {"model": report.model or "", "created_at": utcnow()})
    firmware_id: int | None = None
    vkey: str | None = None
    if report.firmware_version:
        try:
            vkey = version_key(report.firmware_version)
        except ValueError:  # no digits or words at all: stored, but never ordered against others
            vkey = ""
        firmware_id = _upsert_id(
            session,
            FirmwareBuild,
            {
                "version": report.firmware_version,
                "build_id": report.firmware_build_id or "",
                "sha256": report.firmware_sha256 or "",
            },
            {"version_key": vkey, "created_at": utcnow()},
        )
    return device_id, rig_id, firmware_id, vkey


def _file_once(
    session: Session,
    report: FaultReport,
    key: str,
    current: Fingerprint,
    sigs: list[Signature],
    artifacts: Sequence[StoredArtifact],
    actor: str,
    refs: _Refs,
) -> FilingResult:
    existing = session.execute(
        select(Occurrence.id, Occurrence.fault_id, Occurrence.title, Occurrence.regression, Fault.status)
        .join(Fault, Fault.id == Occurrence.fault_id)
        .where(Occurrence.occurrence_key == key)
    ).first()
    if existing is not None:
        occ_id, fault_id, title, regression, status = existing
        return FilingResult(fault_id, False, occ_id, status, title, key, bool(regression), True)

    seen_at = to_utc(report.started) or utcnow()
    ended = to_utc(report.ended)
    device_id, rig_id, firmware_id, vkey = refs

    # Which fault is this? First matching signature wins, in the fingerprint's order.
    found: dict[tuple[int, str], int] = {}
    for row in session.execute(
        select(FaultSignature.algorithm_version, FaultSignature.hash, FaultSignature.fault_id).where(
            FaultSignature.hash.in_([s.hash for s in sigs])
        )
    ):
        found[(row.algorithm_version, row.hash)] = row.fault_id
    fault: Fault | None = None
    successor = False
    for sig in sigs:
        if (sig.algorithm_version, sig.hash) not in found:
            continue
        candidate = canonical_fault(session, found[(sig.algorithm_version, sig.hash)])
        if sig.algorithm_version != current.algorithm_version:
            # Only an older algorithm's title matched: the fault is this bug's predecessor unless the
            # current algorithm already gave it another bug (v2 put every oops ending in "Fatal
            # exception" into one fault: the first v3 bug to arrive takes it over, the others get their
            # own). A corrupted report never takes a fault over.
            if current.corrupted or _claimed(session, candidate.id, current.algorithm_version):
                continue
            successor = True
        fault = candidate
        break

    is_new = fault is None
    if fault is None:
        now = utcnow()
        fault = Fault(
            title=current.title,
            kind=current.kind,
            status="open",
            regression=False,
            first_seen=seen_at,
            last_seen=seen_at,
            occurrence_count=0,
            algorithm_version=current.algorithm_version,
            created_at=now,
            updated_at=now,
        )
        session.add(fault)
        session.flush()
        for sig in current.signatures:
            session.add(
                FaultSignature(
                    fault_id=fault.id,
                    algorithm_version=sig.algorithm_version,
                    hash=sig.hash,
                    title=sig.title,
                    role=sig.role,
                    created_at=now,
                )
            )
        session.flush()  # a concurrent filer with the same bug fails here and retries
        append_audit(
            session,
            actor=actor,
            action="fault.created",
            entity="fault",
            entity_id=fault.id,
            detail={"title": fault.title, "occurrence_key": key},
        )
    else:
        for sig in current.signatures:
            if (sig.algorithm_version, sig.hash) not in found:
                _insert(
                    session,
                    FaultSignature,
                    {
                        "fault_id": fault.id,
                        "algorithm_version": sig.algorithm_version,
                        "hash": sig.hash,
                        "title": sig.title,
                        "role": sig.role if successor else "alternative",
                        "created_at": utcnow(),
                    },
                )
        if successor:
            old_title = fault.title
            fault.title, fault.kind, fault.algorithm_version = current.title, current.kind, current.algorithm_version
            record_retitle(
                session,
                actor=actor,
                fault_id=fault.id,
                detail={
                    "from": old_title,
                    "to": current.title,
                    "algorithm_version": current.algorithm_version,
                    "reason": "successor of an older algorithm's fault",
                    "occurrence_key": key,
                },
            )

    run_id = session.execute(
        insert(TestRun)
        .values(
            run_key=key,
            rig_id=rig_id,
            device_id=device_id,
            firmware_id=firmware_id,
            test_id=report.test_id,
            params=json.dumps(redact(report.params), sort_keys=True, default=str),
            seed=None if report.seed is None else str(report.seed),
            network_profile=None
            if report.network_profile is None
            else json.dumps(redact(report.network_profile), sort_keys=True, default=str),
            outcome=report.outcome,
            started=seen_at,
            ended=ended,
        )
        .returning(TestRun.id)
    ).scalar_one()

    regression = False
    if vkey and fault.status == "fixed" and fault.fixed_in_key and vkey >= fault.fixed_in_key:
        res = cast(
            "CursorResult[Any]",
            session.execute(
                update(Fault)
                .where(Fault.id == fault.id, Fault.status == "fixed", Fault.fixed_in_key == fault.fixed_in_key)
                .values(status="open", regression=True, updated_at=utcnow())
            ),
        )
        regression = res.rowcount == 1
        if regression:
            append_audit(
                session,
                actor=actor,
                action="fault.regression",
                entity="fault",
                entity_id=fault.id,
                detail={"fixed_in": fault.fixed_in, "seen_on": report.firmware_version, "occurrence_key": key},
            )

    # A concurrent filer of the same occurrence fails at the unique key (here or at the run) and retries.
    occ_id = session.execute(
        insert(Occurrence)
        .values(
            occurrence_key=key,
            fault_id=fault.id,
            test_run_id=run_id,
            device_id=device_id,
            rig_id=rig_id,
            firmware_id=firmware_id,
            seen_at=seen_at,
            title=current.title,
            signature_hash=current.hash,
            symptom=report.symptom,
            message=report.message,
            excerpt=report.excerpt,
            regression=regression,
            filed_at=utcnow(),
        )
        .returning(Occurrence.id)
    ).scalar_one()

    for art in artifacts:
        art_id = _upsert_id(
            session,
            Artifact,
            {"sha256": art.sha256},
            {"size": art.size, "media_type": art.media_type, "path": art.path, "created_at": utcnow()},
        )
        _insert(session, OccurrenceArtifact, {"occurrence_id": occ_id, "name": art.name, "artifact_id": art_id})

    status = session.execute(
        update(Fault)
        .where(Fault.id == fault.id)
        .values(
            occurrence_count=Fault.occurrence_count + 1,
            last_seen=case((Fault.last_seen < seen_at, seen_at), else_=Fault.last_seen),
            first_seen=case((Fault.first_seen > seen_at, seen_at), else_=Fault.first_seen),
            updated_at=utcnow(),
        )
        .returning(Fault.status)
    ).scalar_one()
    # Every filing is audited (its entry counts the occurrence), so a deleted occurrence is noticed.
    append_audit(
        session,
        actor=actor,
        action="occurrence.filed",
        entity="occurrence",
        entity_id=occ_id,
        detail={
            "occurrence_id": occ_id,
            "occurrence_key": key,
            "fault_id": fault.id,
            "new_fault": is_new,
            "regression": regression,
            "signature": current.hash,
        },
    )
    return FilingResult(fault.id, is_new, occ_id, status, current.title, key, regression, False)
