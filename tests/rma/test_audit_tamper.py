"""Tamper evidence on both backends: edited, deleted (middle, head) and added audit rows, deleted
occurrences, altered counters, and the head anchored outside the database.

The tamperer here has write access to the database and drops (SQLite) or disables (PostgreSQL) the
triggers that refuse UPDATE and DELETE, as a careless or dishonest administrator could.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from lab.rma import RmaStore
from lab.rma.audit import parse_head, read_head_file
from lab.rma.db import make_engine, migrate

from .conftest import make_report
from .test_cli import rma

LOGS = ["oom_stb_app.log", "oom_epg.log", "segfault_dvbd.log"]


def _tamper(store: RmaStore, *statements: str) -> None:
    """Run SQL with the append-only and no-delete triggers out of the way."""
    with store.engine.begin() as c:
        if c.dialect.name == "sqlite":
            for (name,) in c.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'").all():
                c.exec_driver_sql(f"DROP TRIGGER {name}")
        else:
            for table in ("audit_log", "occurrences", "faults", "rma_cases", "evidence", "verdicts"):
                c.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        for sql in statements:
            c.exec_driver_sql(sql)


def _filled(store: RmaStore, n: int = 6) -> list[int]:
    """n filings (3 faults), one fixed, one case with evidence and a verdict; returns occurrence ids."""
    occ = [store.file(make_report(f"k{i}", log=LOGS[i % 3])).occurrence_id for i in range(n)]
    store.mark_fixed(1, "2.2.0", actor="alice")
    case_id = store.create_case("SN-A0001", "reboots", dt.date(2026, 11, 3))
    ev = store.add_evidence(case_id, kind="diag", source="diag --json", value="ok")
    store.record_verdict(case_id, "no_fault_found", rule_set_version="r/1", justification="j", evidence_ids=[ev])
    return [o for o in occ if o is not None]


def test_an_intact_database_passes_and_every_filing_is_audited_with_counters(store: RmaStore) -> None:
    occ = _filled(store)
    check = store.verify_audit()
    assert check.ok, check.problems
    with store.session() as s:
        rows = s.execute(text("SELECT action, counts FROM audit_log ORDER BY seq")).all()
    actions = [a for a, _ in rows]
    assert actions.count("occurrence.filed") == len(occ) and actions.count("fault.created") == 3
    last = json.loads(rows[-1][1])
    assert last == {**check.counts, "audit_entries": len(rows)}
    assert last["occurrences"] == 6 and last["faults"] == 3 and last["verdicts"] == 1
    anchors, bad = read_head_file(store.audit_head_path)
    assert not bad and max(anchors) == check.head


def test_an_edited_audit_row_is_named(store: RmaStore) -> None:
    _filled(store)
    _tamper(store, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
    check = store.verify_audit()
    assert not check and check.bad_seq == 3
    assert any("entry 3" in p and "altered" in p for p in check.problems)


def test_last_rows_deleted_are_found_by_the_head_file_and_by_an_exported_head(store: RmaStore, tmp_path: Path) -> None:
    _filled(store)
    exported = store.verify_audit().head
    assert exported is not None
    top = exported[0]
    _tamper(store, f"DELETE FROM audit_log WHERE seq > {top - 3}")
    check = store.verify_audit()
    assert not check
    assert any(f"entries {top - 2}-{top} are missing at the head" in p for p in check.problems), check.problems
    # Without the head file: the exported head still tells, and so do the counters (the rows remain).
    check = store.verify_audit(head_file=tmp_path / "absent", expect_head=exported)
    assert any("missing at the head" in p for p in check.problems)
    bare = store.verify_audit(head_file=tmp_path / "absent")
    assert not bare and any("more than entry" in p for p in bare.problems), bare.problems


def test_rows_deleted_in_the_middle_are_named(store: RmaStore) -> None:
    _filled(store)
    _tamper(store, "DELETE FROM audit_log WHERE seq IN (4, 5)")
    check = store.verify_audit()
    assert any("entries 4-5 are missing" in p for p in check.problems), check.problems


def test_a_deleted_occurrence_is_named_and_counted(store: RmaStore) -> None:
    occ = _filled(store)
    victim = occ[2]
    _tamper(
        store,
        f"DELETE FROM occurrence_artifacts WHERE occurrence_id = {victim}",
        f"DELETE FROM occurrences WHERE id = {victim}",
    )
    check = store.verify_audit()
    assert not check
    assert any(f"occurrences row {victim}" in p and "deleted" in p for p in check.problems), check.problems
    assert any("1 occurrences row(s) deleted: the newest entry" in p for p in check.problems), check.problems
    assert any("occurrence_count says" in p for p in check.problems)
    # A later filing does not hide it: counters are carried forward, never re-counted from the tables.
    store.file(make_report("after", log=LOGS[0]))
    again = store.verify_audit()
    assert any("1 occurrences row(s) deleted: the newest entry" in p for p in again.problems), again.problems
    assert any(f"occurrences row {victim}" in p for p in again.problems), again.problems


def test_an_added_occurrence_and_an_altered_counter_are_named(store: RmaStore) -> None:
    _filled(store)
    _tamper(store, "UPDATE faults SET occurrence_count = occurrence_count + 5 WHERE id = 2")
    check = store.verify_audit()
    assert any("fault 2: occurrence_count says" in p for p in check.problems), check.problems
    with store.session() as s:
        row = s.execute(text("SELECT * FROM occurrences ORDER BY id LIMIT 1")).mappings().one()
        run = s.execute(text("SELECT * FROM test_runs WHERE id = :i"), {"i": row["test_run_id"]}).mappings().one()
    _tamper(
        store,
        "INSERT INTO test_runs (run_key, rig_id, device_id, test_id, params, outcome, started) "
        f"VALUES ('forged', {run['rig_id']}, {run['device_id']}, 'x', '{{}}', 'device_fault', '2026-01-01')",
    )
    with store.session() as s:
        run_id = s.execute(text("SELECT id FROM test_runs WHERE run_key = 'forged'")).scalar_one()
    _tamper(
        store,
        "INSERT INTO occurrences (occurrence_key, fault_id, test_run_id, device_id, rig_id, seen_at, title, "
        f"signature_hash, regression, filed_at) VALUES ('forged', 2, {run_id}, {row['device_id']}, {row['rig_id']}, "
        "'2026-01-01', 't', 'h', false, '2026-01-01')",
    )
    check = store.verify_audit()
    assert any("have no audit entry" in p for p in check.problems), check.problems


def test_cli_head_and_expect_head(tmp_path: Path) -> None:
    db = str(tmp_path / "rma.sqlite")
    store = RmaStore(db)
    _filled(store)
    store.close()
    res = rma("audit", "--head", db=db)
    assert res.returncode == 0
    seq, hash_ = parse_head(res.stdout)
    assert rma("audit", "--expect-head", res.stdout.strip(), db=db).returncode == 0
    wrong = f"{seq}:{'f' * 64}"
    res2 = rma("audit", "--expect-head", wrong, db=db)
    assert res2.returncode == 1 and f"entry {seq} differs from its anchor" in res2.stdout
    res3 = rma("audit", "--expect-head", "12:nothex", db=db)
    assert res3.returncode == 4 and "SEQ:HASH" in res3.stderr and "Traceback" not in res3.stderr
    ahead = rma("audit", "--expect-head", f"{seq + 4}:{hash_}", "--json", db=db)
    assert ahead.returncode == 1
    out = json.loads(ahead.stdout)
    assert not out["ok"] and any("missing at the head" in p for p in out["problems"])


def test_the_default_head_file_sits_beside_an_sqlite_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STBLAB_RMA_AUDIT_HEAD")
    store = RmaStore(tmp_path / "lab.sqlite")
    store.file(make_report("a", log=LOGS[0]))
    assert store.audit_head_path == tmp_path / "lab.sqlite.audit-head"
    anchors, _ = read_head_file(store.audit_head_path)
    assert anchors and anchors[-1] == store.verify_audit().head
    store.close()


def test_a_database_from_before_the_counters_is_anchored_by_the_migration(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine, "0001")
    with engine.begin() as c:
        c.exec_driver_sql("INSERT INTO devices (serial, model, created_at) VALUES ('SN-OLD', 'm', '2026-01-01')")
        c.exec_driver_sql(
            "INSERT INTO rma_cases (device_id, complaint, received, state, created_at, updated_at) "
            "VALUES (1, 'old', '2026-01-01', 'received', '2026-01-01', '2026-01-01')"
        )
    migrate(engine)
    store = RmaStore(db_url)
    check = store.verify_audit()
    assert check.ok, check.problems
    with store.session() as s:
        action = s.execute(text("SELECT action FROM audit_log ORDER BY seq")).scalars().all()
    assert action == ["audit.anchored"]
    store.file(make_report("new", log=LOGS[1]))
    assert store.verify_audit().ok
    _tamper(store, "DELETE FROM rma_cases WHERE id = 1")
    check = store.verify_audit()
    assert any("1 cases row(s) deleted" in p for p in check.problems), check.problems
    store.close()
    engine.dispose()
