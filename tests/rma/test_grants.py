"""PostgreSQL: the recommended grants let the lab file and decide, and refuse it any rewrite of history."""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
import pytest
from sqlalchemy.engine import make_url

from lab.rma import RmaStore
from lab.rma.grants import recommended_grants

from .conftest import make_report


def test_the_lab_role_files_and_decides_but_cannot_update_or_delete_history(pg_cluster, tmp_path) -> None:  # noqa: ANN001
    owner_url = pg_cluster.create_db()
    RmaStore.open(owner_url).close()  # the owner migrates
    url = make_url(owner_url)
    role = "lab_" + uuid.uuid4().hex[:8]
    conninfo = f"host={url.host} port={url.port} user=postgres dbname={url.database}"
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute(f"CREATE ROLE {role} LOGIN")
        for statement in recommended_grants(role).splitlines():
            if statement and not statement.startswith("--"):
                c.execute(statement)
    lab_url = url.set(username=role).render_as_string(hide_password=False)
    store = RmaStore(lab_url, artifact_root=tmp_path / "a", journal_path=tmp_path / "j.jsonl")
    first = store.file(make_report("g1", log="oom_stb_app.log"))
    store.file(make_report("g2", log="oom_stb_app.log"))
    store.mark_fixed(first.fault_id, "2.2.0", actor="alice")
    case_id = store.create_case("SN-A0001", "reboots", dt.date(2026, 11, 3))
    ev = store.add_evidence(case_id, kind="diag", source="diag", value="ok")
    store.record_verdict(case_id, "no_fault_found", rule_set_version="r/1", justification="j", evidence_ids=[ev])
    assert store.verify_audit().ok
    lab_conninfo = f"host={url.host} port={url.port} user={role} dbname={url.database}"
    for sql in (
        "UPDATE audit_log SET actor = 'mallory'",
        "DELETE FROM audit_log",
        "DELETE FROM occurrences",
        "DELETE FROM verdicts",
        "UPDATE verdicts SET verdict = 'user_damage'",
        "ALTER TABLE audit_log DISABLE TRIGGER USER",
        "TRUNCATE audit_log",
    ):
        with psycopg.connect(lab_conninfo, autocommit=True) as c, pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(sql)
    assert store.verify_audit().ok
    store.close()


def test_a_role_name_that_is_not_an_identifier_is_refused() -> None:
    with pytest.raises(ValueError, match="identifier"):
        recommended_grants("lab; DROP TABLE faults")
