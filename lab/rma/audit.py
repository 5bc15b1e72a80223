"""Append-only audit log chained by hashes, with row counters and an anchor outside the database.

Every write that matters appends one entry (fault created, occurrence filed, status changes,
reproductions, retitles, cases, evidence, verdicts and overrides). Each entry's hash covers the
previous entry's hash, its own content and the **counters** of the rows it vouches for (faults,
occurrences, cases, evidence, verdicts, reproductions and audit entries, counted inside the same
transaction). The head of the chain (``SEQ:HASH``) is appended to a **head file** outside the
database after every commit, so a chain cut short at its end is still noticed.

:func:`verify_audit` then names each problem it finds:

* an entry edited (its hash no longer matches its content) or out of line (``prev_hash``);
* entries deleted in the middle (a gap in ``seq``) or at the head (the anchor names a later entry);
* an audited row deleted (an occurrence, fault, case, evidence or verdict the log says was
  written is gone) or a row added behind the log's back (a row no entry vouches for);
* a counter that does not match the rows: an entry whose counters differ from its predecessor's
  by other than what its action wrote, the newest entry's counters against the live tables, and
  each fault's ``occurrence_count`` against its occurrence rows.

Counters are carried forward (the predecessor's plus what the entry's action wrote), so an append
costs the same whatever the size of the tables, and a deleted row stays missing against every
later entry. The database refuses UPDATE and DELETE on the log (triggers); concurrent writers queue
at one lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction advisory lock) so the chain
never forks.

Example::

    check = verify_audit(session, anchors=read_head_file(path))
    assert check.ok, check.problems
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import weakref
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session

from lab.rma.models import AuditEntry, Evidence, Fault, Occurrence, Reproduction, RmaCase, Verdict, utcnow

log = logging.getLogger("stblab.rma")

GENESIS = "0" * 64
#: Rows each entry counts, by the name the counters carry.
COUNTED: dict[str, Any] = {
    "faults": Fault,
    "occurrences": Occurrence,
    "cases": RmaCase,
    "evidence": Evidence,
    "verdicts": Verdict,
    "reproductions": Reproduction,
}
#: The key of a PostgreSQL transaction advisory lock taken by every append ("STBL").
PG_LOCK_KEY = 0x5354424C
_HEAD_LINE = re.compile(r"^(\d{1,18}):([0-9a-f]{64})$")


def _canonical(detail: Any) -> str:
    return json.dumps(detail, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))


def entry_hash(
    prev_hash: str,
    seq: int,
    at: dt.datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: int | None,
    detail: str,
    counts: str | None = None,
) -> str:
    """The hash an entry must carry, from its predecessor's hash and its own fields (counters included)."""
    fields: list[Any] = [prev_hash, seq, at.isoformat(), actor, action, entity, entity_id, detail]
    if counts is not None:  # entries written before migration 0002 carry no counters
        fields.append(counts)
    return hashlib.sha256(_canonical(fields).encode()).hexdigest()


def count_rows(session: Session) -> dict[str, int]:
    """The live number of rows of each counted table."""
    return {
        name: int(session.execute(select(func.count()).select_from(model)).scalar_one())
        for name, model in COUNTED.items()
    }


def _lock_chain(session: Session) -> None:
    """Queue behind other appenders (PostgreSQL; SQLite's BEGIN IMMEDIATE already does)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})


def append_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: int | None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add one entry at the end of the chain (inside the caller's transaction, after the rows it vouches for)."""
    _lock_chain(session)
    session.flush()
    last = session.execute(
        select(AuditEntry.seq, AuditEntry.hash, AuditEntry.counts).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    seq = last.seq + 1 if last else 1
    prev = last.hash if last else GENESIS
    at = utcnow()
    text_ = _canonical(detail or {})
    counts = _canonical(
        {**_next_counts(session, last.counts if last else "{}", action, detail or {}), "audit_entries": seq}
    )
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=entity_id,
        detail=text_,
        counts=counts,
        prev_hash=prev,
        hash=entry_hash(prev, seq, at, actor, action, entity, entity_id, text_, counts),
    )
    session.add(entry)
    session.flush()
    _remember_head(session, seq, entry.hash)
    return entry


def _next_counts(session: Session, previous: str | None, action: str, detail: dict[str, Any]) -> dict[str, int]:
    """The counters of a new entry: its predecessor's plus the rows its action wrote.

    Carried forward rather than counted, so an append costs the same with a million rows, and a
    row deleted at any time stays missing from the tables against every later entry's counters.
    The rows are counted only where there is nothing to carry forward: the first entry, and the
    ``audit.anchored`` entry migration 0002 writes on a database that already held rows.
    """
    try:
        before = {k: int(v) for k, v in json.loads(previous).items()} if previous is not None else None
    except (ValueError, TypeError, AttributeError):
        before = None
    if before is None or action == "audit.anchored":
        return count_rows(session)
    delta = _delta(action, detail)
    return {name: before.get(name, 0) + delta[name] for name in COUNTED}


# --- the anchor outside the database -------------------------------------------------------------

_HEAD_FILES: weakref.WeakKeyDictionary[Engine, Path] = weakref.WeakKeyDictionary()


def set_head_file(engine: Engine, path: str | os.PathLike[str] | None) -> None:
    """Append the chain's head to ``path`` after every commit through ``engine`` (None: stop)."""
    if path is None:
        _HEAD_FILES.pop(engine, None)
    else:
        _HEAD_FILES[engine] = Path(path)


def head_file_of(engine: Engine) -> Path | None:
    """The head file ``engine``'s commits append to, if any."""
    return _HEAD_FILES.get(engine)


def _engine_of(session: Session) -> Engine | None:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else getattr(bind, "engine", None)


def _remember_head(session: Session, seq: int, hash_: str) -> None:
    engine = _engine_of(session)
    if engine is None or engine not in _HEAD_FILES:
        return
    session.info["stblab_audit_head"] = (seq, hash_, _HEAD_FILES[engine])
    if not session.info.get("stblab_audit_listening"):
        session.info["stblab_audit_listening"] = True
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)


def _after_commit(session: Session) -> None:
    pending = session.info.pop("stblab_audit_head", None)
    if pending is not None:
        seq, hash_, path = pending
        try:
            append_head(path, seq, hash_)
        except OSError as exc:  # the entry is committed; `rma audit` will see the file lag behind
            log.warning("audit head %s:%s not written to %s: %s", seq, hash_, path, exc)


def _after_rollback(session: Session) -> None:
    session.info.pop("stblab_audit_head", None)


def append_head(path: str | os.PathLike[str], seq: int, hash_: str) -> None:
    """Append ``SEQ:HASH`` to the head file (one write with O_APPEND: concurrent writers are safe).

    Not fsynced: the anchor is as durable as the commit it follows (SQLite in WAL mode with
    ``synchronous=NORMAL`` does not sync each commit either). A head file that lags behind the
    database after a crash is harmless; one ahead of it would be a false alarm.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{seq}:{hash_}\n".encode())
    finally:
        os.close(fd)


def parse_head(value: str) -> tuple[int, str]:
    """``SEQ:HASH`` -> (seq, hash). Raises ValueError naming what is wrong."""
    m = _HEAD_LINE.match(value.strip().lower())
    if not m:
        raise ValueError(f"expected SEQ:HASH (a number, ':' and 64 hex digits), got {value.strip()[:100]!r}")
    return int(m.group(1)), m.group(2)


def read_head_file(path: str | os.PathLike[str]) -> tuple[list[tuple[int, str]], list[str]]:
    """Anchors recorded in a head file, and the problems reading it (unreadable lines named)."""
    anchors: list[tuple[int, str]] = []
    problems: list[str] = []
    try:
        with open(path, "rb") as fh:
            for n, raw in enumerate(fh, 1):
                try:
                    anchors.append(parse_head(raw.decode("ascii")))
                except (UnicodeDecodeError, ValueError):
                    problems.append(f"head file {path}: line {n} is not SEQ:HASH (the file was edited)")
    except FileNotFoundError:
        pass
    return anchors, problems


# --- the check -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditCheck:
    """Result of :func:`verify_audit`: truthy when the whole story holds.

    ``problem`` is the first of ``problems`` (each names what is missing, edited or out of count);
    ``head`` is the newest entry as ``(seq, hash)``; ``notes`` are facts that are not failures (no
    anchor to compare with, entries older than the counters).
    """

    ok: bool
    entries: int
    bad_seq: int | None = None
    problem: str = ""
    problems: tuple[str, ...] = ()
    head: tuple[int, str] | None = None
    counts: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.ok

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``stblab rma audit --json``)."""
        return {
            "ok": self.ok,
            "entries": self.entries,
            "bad_seq": self.bad_seq,
            "problem": self.problem,
            "problems": list(self.problems),
            "head": f"{self.head[0]}:{self.head[1]}" if self.head else None,
            "counts": self.counts,
            "notes": list(self.notes),
        }


def _delta(action: str, detail: dict[str, Any]) -> Counter[str]:
    """How many rows of each counted table an entry's action wrote."""
    d: Counter[str] = Counter()
    if action == "fault.created":
        d["faults"] = 1
    elif action == "occurrence.filed":
        d["occurrences"] = 1
    elif action == "faults.retitled":
        d["faults"] = len(detail.get("created") or [])
    elif action == "case.created":
        d["cases"] = 1
    elif action == "evidence.added":
        d["evidence"] = 1
    elif action in ("verdict.recorded", "verdict.override"):
        d["verdicts"] = 1
    elif action == "fault.reproduction":
        d["reproductions"] = 1
    return d


def _created_ids(action: str, entity_id: int | None, detail: dict[str, Any]) -> list[tuple[str, int]]:
    """(table, id) of the rows an entry says it wrote, where the entry names them."""
    out: list[tuple[str, int]] = []
    if action == "fault.created" and entity_id is not None:
        out.append(("faults", entity_id))
    elif action == "occurrence.filed" and isinstance(detail.get("occurrence_id"), int):
        out.append(("occurrences", detail["occurrence_id"]))
    elif action == "faults.retitled":
        out += [("faults", c["fault"]) for c in detail.get("created") or [] if isinstance(c.get("fault"), int)]
    elif action == "case.created" and entity_id is not None:
        out.append(("cases", entity_id))
    elif action == "evidence.added" and isinstance(detail.get("evidence_id"), int):
        out.append(("evidence", detail["evidence_id"]))
    elif action in ("verdict.recorded", "verdict.override") and isinstance(detail.get("verdict_id"), int):
        out.append(("verdicts", detail["verdict_id"]))
    return out


def _ranges(seqs: Iterable[int]) -> str:
    items = sorted(seqs)
    parts: list[str] = []
    start = prev = items[0]
    then: list[int | None] = [*items[1:], None]
    for s in then:
        if s is not None and s == prev + 1:
            prev = s
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if s is not None:
            start = prev = s
    return ", ".join(parts)


def verify_audit(
    session: Session,
    *,
    anchors: Iterable[tuple[int, str]] = (),
    expect_head: tuple[int, str] | None = None,
    max_problems: int = 200,
) -> AuditCheck:
    """Check the chain, its counters, the rows it vouches for and the anchors (see the module docstring)."""
    v = _Verifier(max_problems)
    for e in session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars():
        v.entry(e)
    if v.legacy:
        v.notes.append(f"{v.legacy} entries older than the row counters (written before migration 0002)")
    live_counts = count_rows(session)
    v.rows(session, live_counts)
    v.fault_counters(session)
    v.anchors(anchors, expect_head)
    last = v.last
    return AuditCheck(
        ok=not v.problems,
        entries=v.entries,
        bad_seq=min(v.first_bad) if v.first_bad else None,
        problem=v.problems[0] if v.problems else "",
        problems=tuple(v.problems),
        head=(last.seq, last.hash) if last is not None else None,
        counts={**live_counts, "audit_entries": v.entries},
        notes=tuple(v.notes),
    )


class _Verifier:
    """One pass of :func:`verify_audit`: walks the entries in order, then checks rows and anchors."""

    def __init__(self, max_problems: int) -> None:
        self.max_problems = max_problems
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.first_bad: list[int] = []
        self.prev_hash = GENESIS
        self.expected_seq = 1
        self.entries = 0
        self.hashes: dict[int, str] = {}
        self.prev_counts: dict[str, int] | None = None
        self.legacy = 0
        self.base_max: dict[str, int] = {}
        self.audited: dict[str, dict[int, int]] = {name: {} for name in COUNTED}  # table -> id -> seq
        self.last: AuditEntry | None = None
        self.last_counts: dict[str, int] | None = None

    def bad(self, seq: int | None, message: str) -> None:
        if seq is not None:
            self.first_bad.append(seq)
        if len(self.problems) < self.max_problems:
            self.problems.append(message)

    # -- the chain, entry by entry

    def entry(self, e: AuditEntry) -> None:
        """Check one entry: its place in the chain, its hash, its counters; remember the rows it created."""
        self.entries += 1
        linked = self._link(e)
        if e.hash != entry_hash(e.prev_hash, e.seq, e.at, e.actor, e.action, e.entity, e.entity_id, e.detail, e.counts):
            self.bad(e.seq, f"entry {e.seq} ({e.action}) was altered: its hash does not match its content")
        detail = self._detail(e)
        counts = self._counts(e)
        if counts is None:
            self.legacy += 1
        else:
            self._check_counts(e, counts, detail)
        for table, row_id in _created_ids(e.action, e.entity_id, detail):
            self.audited[table][row_id] = e.seq
        self.hashes[e.seq] = e.hash
        self.prev_hash = e.hash
        self.expected_seq = e.seq + 1 if linked or e.seq >= self.expected_seq else self.expected_seq
        self.last = e

    def _link(self, e: AuditEntry) -> bool:
        """Does ``e`` follow the entry before it (sequence and prev_hash)? False when entries are missing."""
        if e.seq != self.expected_seq:
            if e.seq < self.expected_seq:
                self.bad(e.seq, f"entry {e.seq} appears twice or out of order")
            else:
                self.bad(
                    e.seq, f"entries {_ranges(range(self.expected_seq, e.seq))} are missing (deleted from the log)"
                )
            self.prev_counts = None  # what the missing entries wrote is unknown: counters restart here
            return False
        if e.prev_hash != self.prev_hash:
            self.bad(e.seq, f"entry {e.seq} does not follow entry {e.seq - 1} (its prev_hash was changed)")
        return True

    def _detail(self, e: AuditEntry) -> dict[str, Any]:
        try:
            detail = json.loads(e.detail or "{}")
        except ValueError:
            self.bad(e.seq, f"entry {e.seq}: detail is not JSON")
            return {}
        return detail if isinstance(detail, dict) else {}

    def _counts(self, e: AuditEntry) -> dict[str, int] | None:
        if e.counts is None:
            return None
        try:
            return {k: int(v) for k, v in json.loads(e.counts).items()}
        except (ValueError, TypeError, AttributeError):
            self.bad(e.seq, f"entry {e.seq}: counters are not readable")
            return None

    def _check_counts(self, e: AuditEntry, counts: dict[str, int], detail: dict[str, Any]) -> None:
        """The entry's row counters against the counters before it plus what its action wrote."""
        if counts.get("audit_entries") != e.seq:
            self.bad(e.seq, f"entry {e.seq}: counts {counts.get('audit_entries')} audit entries, it is entry {e.seq}")
        if e.action == "audit.anchored":
            self.base_max = {k: int(v) for k, v in (detail.get("max_ids") or {}).items()}
        elif self.prev_counts is None and e.seq == 1:
            self.prev_counts = {}
        if self.prev_counts is not None and e.action != "audit.anchored":
            delta = _delta(e.action, detail)
            for name in COUNTED:
                want = self.prev_counts.get(name, 0) + delta[name]
                have = counts.get(name, 0)
                if have != want:
                    gone = want - have
                    what = (
                        f"{gone} {name} row(s) deleted"
                        if gone > 0
                        else f"{-gone} {name} row(s) written without an audit entry"
                    )
                    self.bad(
                        e.seq,
                        f"entry {e.seq} ({e.action}) counts {have} {name}, the entries before it account for "
                        f"{want}: {what} before entry {e.seq}",
                    )
        self.prev_counts = counts
        self.last_counts = counts

    # -- the rows the log vouches for, and rows it does not know

    def rows(self, session: Session, live_counts: dict[str, int]) -> None:
        for table, model in COUNTED.items():
            ids: set[int] = set(session.execute(select(model.id)).scalars())
            for row_id, seq in sorted(self.audited[table].items()):
                if row_id not in ids:
                    self.bad(seq, f"{table} row {row_id} (audit entry {seq}) was deleted")
            floor = self.base_max.get(table, 0)
            if self.last_counts is not None:
                extra = sorted(i for i in ids if i not in self.audited[table] and i > floor)
                if extra:
                    self.bad(
                        None,
                        f"{table} rows {_ranges(extra)} have no audit entry "
                        "(written behind the log's back, or their entries were deleted)",
                    )
        last, last_counts = self.last, self.last_counts
        if last_counts is None or last is None:
            return
        for name in COUNTED:
            have, want = live_counts[name], last_counts.get(name, 0)
            if have < want:
                self.bad(
                    last.seq,
                    f"{want - have} {name} row(s) deleted: the newest entry ({last.seq}) counts {want}, {have} left",
                )
            elif have > want:
                self.bad(
                    last.seq,
                    f"{have - want} {name} row(s) more than entry {last.seq} counts: entries after {last.seq} "
                    "were deleted, or rows were written without an audit entry",
                )

    def fault_counters(self, session: Session) -> None:
        """Each fault's occurrence counter against its rows."""
        per_fault = dict(session.execute(select(Occurrence.fault_id, func.count()).group_by(Occurrence.fault_id)).all())
        for fid, stored in session.execute(select(Fault.id, Fault.occurrence_count).order_by(Fault.id)):
            rows_ = int(per_fault.get(fid, 0))
            if int(stored or 0) != rows_:
                self.bad(None, f"fault {fid}: occurrence_count says {stored}, it has {rows_} occurrence rows")

    def anchors(self, anchors: Iterable[tuple[int, str]], expect_head: tuple[int, str] | None) -> None:
        """The anchors kept outside the database against the chain."""
        wanted = list(anchors)
        if expect_head is not None:
            wanted.append(expect_head)
        if not wanted and self.last is not None:
            self.notes.append(
                "no anchor to compare the head with: entries deleted at the head go unnoticed by the chain alone"
            )
        top = self.last.seq if self.last is not None else 0
        reported_gap = False
        for seq, hash_ in sorted(set(wanted)):
            if seq > top:
                if not reported_gap:
                    self.bad(
                        top + 1,
                        f"entries {_ranges(range(top + 1, max(s for s, _ in wanted) + 1))} are missing at the head "
                        f"(an anchor records entry {max(s for s, _ in wanted)}; the log ends at {top})",
                    )
                    reported_gap = True
            elif seq in self.hashes and self.hashes[seq] != hash_:
                self.bad(
                    seq, f"entry {seq} differs from its anchor {seq}:{hash_[:16]}... (rewritten after it was anchored)"
                )


def anchor_detail(session: Session) -> dict[str, Any]:
    """Detail of an ``audit.anchored`` entry: the highest id of each counted table when counters start."""
    return {
        "max_ids": {
            name: int(session.execute(select(func.coalesce(func.max(model.id), 0))).scalar_one())
            for name, model in COUNTED.items()
        },
        "reason": "row counters start here; rows up to these ids predate per-row audit entries",
    }


__all__ = [
    "COUNTED",
    "GENESIS",
    "AuditCheck",
    "append_audit",
    "append_head",
    "anchor_detail",
    "count_rows",
    "entry_hash",
    "head_file_of",
    "parse_head",
    "read_head_file",
    "set_head_file",
    "verify_audit",
]
