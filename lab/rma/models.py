"""SQLAlchemy 2 models of the RMA database (one schema for SQLite and PostgreSQL).

Uniqueness that filing relies on lives in the schema, so concurrent filers meet at a unique
constraint and retry instead of taking locks in Python:

* ``occurrences.occurrence_key`` -- one row per occurrence however often it is filed or replayed;
* ``fault_signatures (algorithm_version, hash)`` -- one fault per signature;
* ``audit_log.seq`` -- one chain, no forks;
* ``verdicts.supersedes_id`` -- a verdict is superseded at most once.

Columns that may be unknown but take part in a unique key (firmware build id, sha256) hold ``""``
rather than NULL, because NULLs never collide in SQL. Times are UTC.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    """Now, in UTC, without tzinfo (both backends store it the same way)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    """Declarative base of the RMA schema."""


class Device(Base):
    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(128), unique=True)
    model: Mapped[str] = mapped_column(String(128), default="")
    hardware_revision: Mapped[str | None] = mapped_column(String(64))
    production_lot: Mapped[str | None] = mapped_column(String(64))
    warranty_end: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class FirmwareBuild(Base):
    __tablename__ = "firmware_builds"
    __table_args__ = (UniqueConstraint("version", "build_id", "sha256", name="uq_firmware_build"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    version_key: Mapped[str] = mapped_column(String(400), index=True)
    build_id: Mapped[str] = mapped_column(String(128), default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Rig(Base):
    __tablename__ = "rigs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    model: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class TestRun(Base):
    __tablename__ = "test_runs"
    __test__ = False
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_key: Mapped[str] = mapped_column(String(128), unique=True)
    rig_id: Mapped[int] = mapped_column(ForeignKey("rigs.id"))
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    firmware_id: Mapped[int | None] = mapped_column(ForeignKey("firmware_builds.id"))
    test_id: Mapped[str] = mapped_column(Text)
    params: Mapped[str] = mapped_column(Text, default="{}")
    seed: Mapped[str | None] = mapped_column(String(128))
    network_profile: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(32))
    started: Mapped[dt.datetime] = mapped_column(DateTime)
    ended: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Artifact(Base):
    __tablename__ = "artifacts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(128), default="application/octet-stream")
    path: Mapped[str] = mapped_column(Text)  # relative to the artifact root
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Fault(Base):
    __tablename__ = "faults"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    regression: Mapped[bool] = mapped_column(Boolean, default=False)
    fixed_in: Mapped[str | None] = mapped_column(String(64))
    fixed_in_key: Mapped[str | None] = mapped_column(String(400))
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("faults.id"))
    first_seen: Mapped[dt.datetime] = mapped_column(DateTime)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    occurrence_count: Mapped[int] = mapped_column(Integer, default=0)
    repro_hits: Mapped[int | None] = mapped_column(Integer)
    repro_runs: Mapped[int | None] = mapped_column(Integer)
    reproduction_rate: Mapped[float | None] = mapped_column(Float)
    reproducible: Mapped[str | None] = mapped_column(String(32))
    algorithm_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class FaultSignature(Base):
    __tablename__ = "fault_signatures"
    __table_args__ = (UniqueConstraint("algorithm_version", "hash", name="uq_signature"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fault_id: Mapped[int] = mapped_column(ForeignKey("faults.id"), index=True)
    algorithm_version: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16), default="primary")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Occurrence(Base):
    __tablename__ = "occurrences"
    __table_args__ = (
        Index("ix_occ_fault_seen", "fault_id", "seen_at"),
        Index("ix_occ_device_seen", "device_id", "seen_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    occurrence_key: Mapped[str] = mapped_column(String(128), unique=True)
    fault_id: Mapped[int] = mapped_column(ForeignKey("faults.id"))
    test_run_id: Mapped[int] = mapped_column(ForeignKey("test_runs.id"), unique=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    rig_id: Mapped[int] = mapped_column(ForeignKey("rigs.id"))
    firmware_id: Mapped[int | None] = mapped_column(ForeignKey("firmware_builds.id"), index=True)
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime)
    title: Mapped[str] = mapped_column(Text)
    signature_hash: Mapped[str] = mapped_column(String(64))
    symptom: Mapped[str | None] = mapped_column(String(128))
    message: Mapped[str | None] = mapped_column(Text)
    excerpt: Mapped[str | None] = mapped_column(Text)
    regression: Mapped[bool] = mapped_column(Boolean, default=False)
    filed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class OccurrenceArtifact(Base):
    __tablename__ = "occurrence_artifacts"
    occurrence_id: Mapped[int] = mapped_column(ForeignKey("occurrences.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"))


class Reproduction(Base):
    __tablename__ = "reproductions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fault_id: Mapped[int] = mapped_column(ForeignKey("faults.id"), index=True)
    rig_id: Mapped[int | None] = mapped_column(ForeignKey("rigs.id"))
    firmware_id: Mapped[int | None] = mapped_column(ForeignKey("firmware_builds.id"))
    seed: Mapped[str | None] = mapped_column(String(128))
    network_profile: Mapped[str | None] = mapped_column(Text)
    runs: Mapped[int] = mapped_column(Integer)
    hits: Mapped[int] = mapped_column(Integer)
    rate: Mapped[float] = mapped_column(Float)
    verdict: Mapped[str] = mapped_column(String(32))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class RmaCase(Base):
    __tablename__ = "rma_cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    complaint: Mapped[str] = mapped_column(Text)
    received: Mapped[dt.date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16), default="received", index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Evidence(Base):
    __tablename__ = "evidence"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("rma_cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text, default="{}")
    artifact_id: Mapped[int | None] = mapped_column(ForeignKey("artifacts.id"))
    occurrence_id: Mapped[int | None] = mapped_column(ForeignKey("occurrences.id"))
    collected_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Verdict(Base):
    __tablename__ = "verdicts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("rma_cases.id"), index=True)
    verdict: Mapped[str] = mapped_column(String(32))
    rule_set_version: Mapped[str] = mapped_column(String(64))
    justification: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(128))
    override_reason: Mapped[str | None] = mapped_column(Text)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("verdicts.id"), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class VerdictEvidence(Base):
    __tablename__ = "verdict_evidence"
    verdict_id: Mapped[int] = mapped_column(ForeignKey("verdicts.id"), primary_key=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id"), primary_key=True)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text, default="{}")
    # Row counters when the entry was written (JSON; covered by the hash). None before migration 0002.
    counts: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


# Tables of the web app share this schema and its migrations (import at the end: it uses Base).
from lab.rma import web_schema as _web_schema  # noqa: E402,F401
