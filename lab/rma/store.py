"""``RmaStore``: the one object the pytest plugin, the CLI and warranty code talk to.

Filing API (what the pytest plugin calls on a DeviceFault; never on an InfraError or TestError)::

    from lab.rma import RmaStore, FaultReport, ReproductionPolicy

    store = RmaStore(url_or_path)          # None: $STBLAB_RMA_URL, else reports/rma.sqlite
    result = store.file(FaultReport(
        rig="stb-a", device_serial="SN-A0001", model="STB-4K-X1",
        firmware_version="2.1.0", firmware_build_id="b2100", firmware_sha256="...",
        test_id="scenarios/test_zap.py::test_zap[stb-a]", params={"zaps": 10}, seed=7,
        network_profile={"name": "loss2"}, started=t0, ended=t1,
        console_log=console_text,                    # and/or
        check={"scenario": "...::test_zap", "check": "motion", "target": "channel 5"},
        symptom="decoder-freeze", message=str(exc), excerpt=exc.excerpt,
        artifacts={"console.log": run_dir / "console.log", "frame.png": frame_png},
        occurrence_key=f"{session_id}:{nodeid}:{attempt}",
    ))
    result.fault_id, result.is_new, result.occurrence_id, result.status   # status: open/fixed/...

    policy = ReproductionPolicy()                   # up to 10 reruns, stop at 3 hits, < 0.15 not reproducible
    while not policy.done:
        policy.record(rerun_failed())
    store.record_reproduction(result.fault_id, policy, rig="stb-a", seed=7, firmware_version="2.1.0")

``file()`` stores the artifact files first (content-addressed, under the artifact root), then the
occurrence. When the database cannot be reached, the filing goes to the local journal (fsynced)
and ``FilingResult.journaled`` is True; the next ``file()`` that reaches the database, or
``replay_journal()`` / ``stblab rma replay``, files it exactly once (by occurrence key).

The store is created without touching the database, so a lab whose database is down still
starts; the schema is migrated at first contact.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from lab.errors import InfraError, TestError
from lab.firmware.version import version_key
from lab.rma import cases as casemod
from lab.rma import lifecycle, queries
from lab.rma.artifacts import ArtifactStore, StoredArtifact
from lab.rma.audit import AuditCheck, read_head_file, set_head_file, verify_audit
from lab.rma.db import display_url, make_engine, migrate, resolve_url
from lab.rma.filing import file_fault, is_transient, report_fingerprint
from lab.rma.journal import Journal
from lab.rma.models import FirmwareBuild, Rig
from lab.rma.report import FaultReport, FilingResult
from lab.rma.reproduction import ReproductionPolicy

log = logging.getLogger("stblab.rma")

ENV_ARTIFACTS = "STBLAB_RMA_ARTIFACTS"
ENV_JOURNAL = "STBLAB_RMA_JOURNAL"
ENV_AUDIT_HEAD = "STBLAB_RMA_AUDIT_HEAD"
_UNREACHABLE = (OperationalError, InterfaceError)
BUSY_WAIT_S = 60.0  # how long a busy (locked) database is waited for before a filing is journaled


def default_head_path(url: Any) -> Path:
    """Where the audit chain's head is anchored by default: beside an SQLite file, else under reports/."""
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database + ".audit-head")
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{url.host or 'local'}-{url.database or 'rma'}")
    return Path("reports") / f"rma-{name}.audit-head"


def _unreachable(exc: BaseException) -> bool:
    return isinstance(exc, _UNREACHABLE) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


class RmaStore:
    """The RMA database, its artifact files and its local journal."""

    def __init__(
        self,
        url_or_path: str | os.PathLike[str] | None = None,
        *,
        artifact_root: str | os.PathLike[str] | None = None,
        journal_path: str | os.PathLike[str] | None = None,
        audit_head_path: str | os.PathLike[str] | None = None,
        actor: str = "stblab",
    ) -> None:
        self.url = resolve_url(url_or_path)
        self.engine = make_engine(self.url)
        if self.url.get_backend_name() == "sqlite" and self.url.database and self.url.database != ":memory:":
            base = Path(self.url.database).parent
        else:
            base = Path("reports")
        self.artifacts = ArtifactStore(artifact_root or os.environ.get(ENV_ARTIFACTS) or base / "rma-artifacts")
        self.journal = Journal(journal_path or os.environ.get(ENV_JOURNAL) or base / "rma-journal.jsonl")
        self.audit_head_path = Path(audit_head_path or os.environ.get(ENV_AUDIT_HEAD) or default_head_path(self.url))
        set_head_file(self.engine, self.audit_head_path)
        self.actor = actor
        self._migrated = False

    # --- lifecycle of the store ---------------------------------------------------------------

    @classmethod
    def open(cls, url_or_path: str | os.PathLike[str] | None = None, **kwargs: Any) -> RmaStore:
        """A store whose database is reachable and migrated (InfraError otherwise)."""
        store = cls(url_or_path, **kwargs)
        store.ensure_schema()
        return store

    def __repr__(self) -> str:
        return f"RmaStore({display_url(self.url)!r})"

    def __enter__(self) -> RmaStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    def ensure_schema(self) -> None:
        """Migrate the database to the newest schema (once per store). InfraError when unreachable."""
        if self._migrated:
            return
        # A busy database is not a lost one: many filers opening a fresh SQLite file at once can see
        # "database is locked" past the busy timeout (switching it to WAL, migrating). Treating that as
        # "cannot be reached" journaled a filing the database could take a moment later, and its
        # result carried no fault id. Wait (bounded) for a busy database; journal only when it stays busy.
        deadline = time.monotonic() + BUSY_WAIT_S
        delay = 0.02
        while True:
            try:
                migrate(self.engine)
                break
            except _UNREACHABLE as exc:
                busy = is_transient(exc)
                if busy and time.monotonic() < deadline:
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 1.0)
                    continue
                why = f"still busy after {BUSY_WAIT_S:.0f} s: " if busy else ""
                raise InfraError(
                    f"RMA database {display_url(self.url)} cannot be reached: {why}{exc.orig or exc}",
                    instrument="database",
                ) from None
        self._migrated = True

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session on the migrated database (use ``with store.session() as s, s.begin():`` to write)."""
        self.ensure_schema()
        with Session(self.engine, expire_on_commit=False) as s:
            yield s

    # --- filing ----------------------------------------------------------------------------------

    def _store_artifacts(self, report: FaultReport) -> tuple[list[StoredArtifact], list[str]]:
        stored: list[StoredArtifact] = []
        missing: list[str] = []
        for name, path in report.artifact_items():
            try:
                stored.append(self.artifacts.put(path, name))
            except OSError as exc:
                log.warning("artifact %s (%s) not stored: %s", name, path, exc)
                missing.append(name)
        return stored, missing

    def file(self, report: FaultReport) -> FilingResult:
        """File one device fault occurrence (see the module docstring)."""
        try:
            report.validate()
        except ValueError as exc:
            raise TestError(str(exc)) from None
        stored, missing = self._store_artifacts(report)
        try:
            self.ensure_schema()
            if self.journal.path.exists() and self.journal.path.stat().st_size:
                self.replay_journal()
            result = file_fault(self.engine, report, stored, actor=self.actor)
        except (InfraError, *_UNREACHABLE) as exc:
            if isinstance(exc, InfraError) and "cannot be reached" not in exc.message:
                raise
            return self._journal(report, stored, exc)
        if missing:
            log.warning("fault %s filed without artifacts %s", result.fault_id, ", ".join(missing))
        return result

    def _journal(self, report: FaultReport, stored: list[StoredArtifact], exc: BaseException) -> FilingResult:
        entry: dict[str, Any] = {
            "version": 1,
            "journaled_at": dt.datetime.now(dt.UTC).isoformat(),
            "reason": str(getattr(exc, "orig", None) or exc)[:500],
            "report": report.to_json(),
            "artifacts": [a.as_dict() for a in stored],
        }
        entry["report"]["artifacts"] = {}
        self.journal.append(entry)
        log.warning(
            "RMA database %s unreachable; filing %s kept in journal %s",
            display_url(self.url),
            report.key(),
            self.journal.path,
        )
        fp = report_fingerprint(report)
        return FilingResult(None, False, None, "journaled", fp.title, report.key(), journaled=True)

    def replay_journal(self) -> tuple[int, int]:
        """File what waits in the journal (exactly once each); returns (filed, still waiting)."""
        self.ensure_schema()

        def one(entry: dict[str, Any]) -> bool:
            report = FaultReport.from_json(entry["report"])
            arts = [StoredArtifact(**a) for a in entry.get("artifacts", [])]
            try:
                file_fault(self.engine, report, arts, actor=self.actor)
            except InfraError:
                return False  # kept conflicting: transient, the entry waits for the next replay
            except DBAPIError as exc:
                if _unreachable(exc):
                    return False
                raise
            return True

        done, left = self.journal.replay(one)
        if done or left:
            log.info("journal %s: %d filed, %d waiting", self.journal.path, done, left)
        return done, left

    # --- lifecycle of faults ------------------------------------------------------------------

    def mark_fixed(self, fault_id: int, version: str, *, actor: str | None = None, note: str = "") -> None:
        with self.session() as s, s.begin():
            lifecycle.mark_fixed(s, fault_id, version, actor=actor or self.actor, note=note)

    def mark_invalid(self, fault_id: int, reason: str, *, actor: str | None = None) -> None:
        with self.session() as s, s.begin():
            lifecycle.mark_invalid(s, fault_id, actor=actor or self.actor, reason=reason)

    def mark_duplicate(self, fault_id: int, of_fault_id: int, *, actor: str | None = None) -> None:
        with self.session() as s, s.begin():
            lifecycle.mark_duplicate(s, fault_id, of_fault_id, actor=actor or self.actor)

    def reopen(self, fault_id: int, reason: str = "", *, actor: str | None = None) -> None:
        with self.session() as s, s.begin():
            lifecycle.reopen(s, fault_id, actor=actor or self.actor, reason=reason)

    def record_reproduction(
        self,
        fault_id: int,
        policy: ReproductionPolicy,
        *,
        rig: str | None = None,
        firmware_version: str | None = None,
        seed: int | str | None = None,
        network_profile: str | None = None,
        actor: str | None = None,
    ) -> None:
        """Store k of n reruns for a fault (rig and firmware by name/version if known)."""
        with self.session() as s, s.begin():
            rig_id = s.execute(select(Rig.id).where(Rig.name == rig)).scalar() if rig else None
            fw_id = None
            if firmware_version:
                try:
                    same = FirmwareBuild.version_key == version_key(firmware_version)
                except ValueError:  # filed as the box reported it: found by its exact string
                    same = FirmwareBuild.version == firmware_version
                fw_id = s.execute(select(FirmwareBuild.id).where(same)).scalar()
            lifecycle.record_reproduction(
                s,
                fault_id,
                policy,
                actor=actor or self.actor,
                rig_id=rig_id,
                firmware_id=fw_id,
                seed=None if seed is None else str(seed),
                network_profile=network_profile,
            )

    # --- reading -------------------------------------------------------------------------------

    def faults(self, **filters: Any) -> list[dict[str, Any]]:
        with self.session() as s:
            return queries.list_faults(s, **filters)

    def fault(self, fault_id: int, *, occurrences: int = 20) -> dict[str, Any] | None:
        with self.session() as s:
            return queries.get_fault(s, fault_id, occurrences=occurrences)

    def occurrences(self, **filters: Any) -> list[dict[str, Any]]:
        with self.session() as s:
            return queries.list_occurrences(s, **filters)

    def device_history(self, serial: str, *, limit: int = 1000) -> list[dict[str, Any]]:
        with self.session() as s:
            return queries.device_history(s, serial, limit=limit)

    def cases(self, **filters: Any) -> list[dict[str, Any]]:
        with self.session() as s:
            return queries.list_cases(s, **filters)

    def case(self, case_id: int) -> dict[str, Any] | None:
        with self.session() as s:
            return queries.get_case(s, case_id)

    def verify_audit(
        self, *, expect_head: tuple[int, str] | None = None, head_file: str | os.PathLike[str] | None = None
    ) -> AuditCheck:
        """Check the audit chain, its counters and rows, against the head file and ``expect_head``."""
        anchors, problems = read_head_file(head_file or self.audit_head_path)
        with self.session() as s:
            check = verify_audit(s, anchors=anchors, expect_head=expect_head)
        if problems:
            merged = tuple(problems) + check.problems
            check = AuditCheck(
                False, check.entries, check.bad_seq, merged[0], merged, check.head, check.counts, check.notes
            )
        return check

    # --- RMA cases (issue 7) -------------------------------------------------------------------

    def create_case(
        self, serial: str, complaint: str, received: dt.date, *, model: str | None = None, actor: str | None = None
    ) -> int:
        with self.session() as s, s.begin():
            return casemod.create_case(
                s, serial=serial, complaint=complaint, received=received, actor=actor or self.actor, model=model
            ).id

    def set_case_state(self, case_id: int, state: str, *, note: str = "", actor: str | None = None) -> None:
        with self.session() as s, s.begin():
            casemod.set_state(s, case_id, state, actor=actor or self.actor, note=note)

    def add_evidence(
        self, case_id: int, *, kind: str, source: str, value: str, actor: str | None = None, **extra: Any
    ) -> int:
        with self.session() as s, s.begin():
            return casemod.add_evidence(
                s, case_id, kind=kind, source=source, value=value, actor=actor or self.actor, **extra
            ).id

    def record_verdict(
        self,
        case_id: int,
        verdict: str,
        *,
        rule_set_version: str,
        justification: str,
        evidence_ids: list[int],
        actor: str | None = None,
    ) -> int:
        with self.session() as s, s.begin():
            return casemod.record_verdict(
                s,
                case_id,
                verdict,
                rule_set_version=rule_set_version,
                justification=justification,
                evidence_ids=evidence_ids,
                actor=actor or self.actor,
            ).id

    def override_verdict(self, case_id: int, verdict: str, *, reason: str, actor: str) -> int:
        with self.session() as s, s.begin():
            return casemod.override_verdict(s, case_id, verdict, reason=reason, actor=actor).id
