"""The RMA database: deduplicated faults with reproduction rates and evidence, RMA cases and verdicts.

SQLite by default (``reports/rma.sqlite``), PostgreSQL by URL; Alembic migrations applied on open.
Start at :class:`RmaStore` (filing, queries, cases); fingerprints in :mod:`lab.rma.fingerprint`.
"""

from lab.rma.artifacts import ArtifactStore, StoredArtifact
from lab.rma.audit import AuditCheck, verify_audit
from lab.rma.cases import STATES as CASE_STATES
from lab.rma.cases import VERDICTS
from lab.rma.db import open_db, resolve_url
from lab.rma.fingerprint import (
    ALGORITHM_VERSION,
    CheckDescriptor,
    Fingerprint,
    fingerprint,
    fingerprint_check,
    fingerprint_log,
)
from lab.rma.journal import Journal
from lab.rma.report import FaultReport, FilingResult
from lab.rma.reproduction import ReproductionPolicy
from lab.rma.store import RmaStore

__all__ = [
    "ALGORITHM_VERSION",
    "CASE_STATES",
    "VERDICTS",
    "ArtifactStore",
    "AuditCheck",
    "CheckDescriptor",
    "FaultReport",
    "FilingResult",
    "Fingerprint",
    "Journal",
    "ReproductionPolicy",
    "RmaStore",
    "StoredArtifact",
    "fingerprint",
    "fingerprint_check",
    "fingerprint_log",
    "open_db",
    "resolve_url",
    "verify_audit",
]
