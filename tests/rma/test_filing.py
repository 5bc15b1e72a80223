"""Filing on SQLite and PostgreSQL: dedup, idempotence, lifecycle by version, artifacts, secrets, hostile input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from lab.errors import TestError
from lab.rma import ReproductionPolicy, RmaStore
from lab.rma.db import current_revision, head_revision
from lab.rma.models import Artifact, AuditEntry, Occurrence, TestRun, Verdict

from .conftest import make_report


def count(store: RmaStore, model) -> int:
    with store.session() as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


def test_open_migrates_to_head_and_reopening_is_a_no_op(db_url: str, tmp_path: Path) -> None:
    s1 = RmaStore.open(db_url, artifact_root=tmp_path / "a")
    assert current_revision(s1.engine) == head_revision() != ""
    s1.close()
    s2 = RmaStore.open(db_url, artifact_root=tmp_path / "a")
    assert s2.faults() == []
    s2.close()


def test_sqlite_is_opened_in_wal_with_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    store = RmaStore.open(tmp_path / "rma.sqlite")
    with store.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_one_bug_on_other_rigs_devices_and_firmware_is_one_fault(store: RmaStore) -> None:
    a = store.file(make_report("k1", log="arm_oops_decoder.log", rig="stb-a", serial="SN-1", firmware="2.1.0"))
    b = store.file(make_report("k2", log="arm_oops_decoder_2.log", rig="stb-b", serial="SN-2", firmware="2.2.0"))
    c = store.file(make_report("k3", log="x86_oops_decoder.log", rig="stb-c", serial="SN-3", firmware="3.0.0"))
    d = store.file(make_report("k4", log="trace_only_decoder.log", rig="stb-d", serial="SN-4", firmware="3.0.1"))
    assert a.is_new and not b.is_new and not c.is_new and not d.is_new
    assert a.fault_id == b.fault_id == c.fault_id == d.fault_id
    fault = store.fault(a.fault_id)
    assert fault["occurrences"] == 4 and fault["rigs"] == 4 and fault["devices"] == 4
    assert fault["firmware_versions"] == ["2.1.0", "2.2.0", "3.0.0", "3.0.1"]
    assert fault["title"] == "BUG: unable to handle kernel NULL pointer dereference in mpeg_decode_slice"


def test_different_bugs_are_different_faults(store: RmaStore) -> None:
    logs = ["arm_oops_decoder.log", "emulator_oops_menu.log", "oom_stb_app.log", "oom_epg.log", "softlockup.log"]
    ids = {store.file(make_report(f"k{i}", log=log)).fault_id for i, log in enumerate(logs)}
    assert len(ids) == len(logs)
    check = {"scenario": "scenarios/test_zap.py::test_zap[stb-a]", "check": "motion", "target": "channel 5"}
    r1 = store.file(make_report("c1", check=check))
    r2 = store.file(make_report("c2", check={**check, "scenario": "scenarios/test_zap.py::test_zap[stb-b]"}))
    r3 = store.file(make_report("c3", check={**check, "target": "channel 6"}))
    assert r1.fault_id == r2.fault_id != r3.fault_id
    assert len(store.faults()) == len(logs) + 2


def test_filing_the_same_occurrence_again_stores_it_once(store: RmaStore) -> None:
    first = store.file(make_report("same-key", log="oom_stb_app.log"))
    again = store.file(make_report("same-key", log="oom_stb_app.log"))
    assert again.replayed and not first.replayed
    assert (again.fault_id, again.occurrence_id) == (first.fault_id, first.occurrence_id)
    assert count(store, Occurrence) == 1 and count(store, TestRun) == 1
    assert store.fault(first.fault_id)["occurrences"] == 1


def test_fixed_fault_reopens_as_regression_by_version_order_not_string_order(store: RmaStore) -> None:
    first = store.file(make_report("r1", log="oom_stb_app.log", firmware="2.9.0"))
    store.mark_fixed(first.fault_id, "2.10.0", actor="alice")
    older = store.file(make_report("r2", log="oom_stb_app_2.log", firmware="2.9.5"))  # "2.9.5" > "2.10.0" as text
    assert older.status == "fixed" and not older.regression
    rc = store.file(make_report("r3", log="oom_stb_app.log", firmware="2.10.0-rc1"))  # before the release
    assert rc.status == "fixed"
    newer = store.file(make_report("r4", log="oom_stb_app.log", firmware="2.10.0"))
    assert newer.status == "open" and newer.regression
    f = store.fault(first.fault_id)
    assert f["status"] == "open" and f["regression"] and f["fixed_in"] == "2.10.0"
    assert [o["regression"] for o in store.occurrences(fault_id=first.fault_id)] == [True, False, False, False]
    audit = store.verify_audit()
    assert audit.ok and audit.entries == 7  # created, 4 occurrences filed, fixed, regression


def test_duplicate_sends_later_occurrences_to_the_fault_that_stands(store: RmaStore) -> None:
    a = store.file(make_report("d1", log="oom_stb_app.log"))
    b = store.file(make_report("d2", log="oom_epg.log"))
    store.mark_duplicate(b.fault_id, a.fault_id, actor="bob")
    again = store.file(make_report("d3", log="oom_epg.log"))
    assert again.fault_id == a.fault_id and not again.is_new
    with pytest.raises(TestError, match="itself"):
        store.mark_duplicate(a.fault_id, b.fault_id, actor="bob")  # would make a cycle
    store.mark_invalid(a.fault_id, "lab PSU was faulty", actor="bob")
    assert store.file(make_report("d4", log="oom_stb_app.log")).status == "invalid"
    assert [f["status"] for f in store.faults(status="invalid")] == ["invalid"]


def test_reproduction_record_is_k_of_n_with_the_syzbot_policy(store: RmaStore) -> None:
    r = store.file(make_report("p1", log="softlockup.log", seed=7))
    policy = ReproductionPolicy()
    for hit in [False, True, False, True, True]:
        policy.record(hit)
    assert policy.done and policy.verdict == "reproducible" and (policy.hits, policy.runs) == (3, 5)
    with pytest.raises(ValueError):
        policy.record(True)
    store.record_reproduction(r.fault_id, policy, rig="stb-a", seed=7, firmware_version="2.1.0")
    rare = ReproductionPolicy()
    while not rare.done:
        rare.record(rare.runs == 4)  # one hit in ten
    assert (rare.hits, rare.runs, rare.verdict) == (1, 10, "not_reproducible")
    two = ReproductionPolicy()
    while not two.done:
        assert two.verdict == "pending"
        two.record(two.runs in (2, 7))
    assert (two.hits, two.runs, two.verdict) == (2, 10, "reproducible")  # 0.2 >= 0.15
    store.record_reproduction(r.fault_id, rare, rig="stb-b", seed=7)
    f = store.fault(r.fault_id)
    assert f["reproduction"] == {"hits": 1, "runs": 10, "rate": 0.1, "verdict": "not_reproducible"}
    assert [(x["hits"], x["runs"]) for x in f["reproductions"]] == [(3, 5), (1, 10)]


def test_artifacts_are_content_addressed_outside_the_database(store: RmaStore, tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_bytes(b"boot\n\xff\xfe binary tail\n")
    frame = tmp_path / "frame.png"
    frame.write_bytes(b"\x89PNG fake but bytes are bytes")
    r1 = store.file(make_report("a1", log="oom_stb_app.log", artifacts={"console.log": log, "frame.png": frame}))
    r2 = store.file(make_report("a2", log="oom_stb_app.log", artifacts=[log]))
    assert count(store, Artifact) == 2  # same console log twice: stored once
    occ = store.fault(r1.fault_id)["recent_occurrences"]
    arts = {a["name"]: a for o in occ for a in o["artifacts"] if o["id"] == r1.occurrence_id}
    assert set(arts) == {"console.log", "frame.png"}
    stored = store.artifacts.path_of(arts["console.log"]["sha256"])
    assert stored.read_bytes() == log.read_bytes() and store.artifacts.verify(arts["console.log"]["sha256"])
    assert r2.occurrence_id != r1.occurrence_id
    missing = store.file(make_report("a3", log="oom_stb_app.log", artifacts={"clip.mp4": tmp_path / "nope.mp4"}))
    assert missing.occurrence_id is not None  # a lost artifact file never loses the filing


def test_secrets_in_parameters_never_reach_the_database(store: RmaStore) -> None:
    r = store.file(
        make_report(
            "s1",
            log="oom_stb_app.log",
            params={"channel": 5, "password": "hunter2", "nested": {"api_token": "tok-123"}},
            network_profile={"name": "loss2", "secret": "x-secret"},
        )
    )
    occ = store.occurrences(fault_id=r.fault_id)[0]
    assert occ["params"] == {"channel": 5, "password": "***", "nested": {"api_token": "***"}}
    with store.session() as s:
        dump = json.dumps([list(row) for row in s.execute(select(TestRun.params, TestRun.network_profile))])
    assert "hunter2" not in dump and "tok-123" not in dump and "x-secret" not in dump


def test_secrets_under_other_names_and_inside_urls_never_reach_the_database(store: RmaStore) -> None:
    params = {
        "stream": "rtsp://admin:hunter2@10.0.0.5:554/live",
        "Authorization": "Bearer tok-123",
        "api-key": "k-456",
        "apikey": "k-789",
        "cookie": "sid=c-000",
        "author": "bob",
        "keyframe": 3,
    }
    r = store.file(make_report("s2", log="oom_stb_app.log", params=params, network_profile="http://u:pw-1@proxy/"))
    occ = store.occurrences(fault_id=r.fault_id)[0]
    assert occ["params"]["stream"] == "rtsp://admin:***@10.0.0.5:554/live"
    assert occ["params"]["author"] == "bob" and occ["params"]["keyframe"] == 3
    with store.session() as s:
        dump = json.dumps([list(row) for row in s.execute(select(TestRun.params, TestRun.network_profile))])
    for secret in ("hunter2", "tok-123", "k-456", "k-789", "c-000", "pw-1"):
        assert secret not in dump


def test_warnings_without_a_call_trace_at_different_places_are_different_faults(store: RmaStore) -> None:
    a, b, a2 = make_report("w1"), make_report("w2"), make_report("w3")
    a.console_log = "[ 1.000000] WARNING: CPU: 0 PID: 1 at drivers/gpu/foo.c:123\n"
    b.console_log = "[ 9.000000] WARNING: CPU: 1 PID: 7 at net/core/dev.c:55\n"
    a2.console_log = "[ 5.000000] WARNING: CPU: 1 PID: 3 at drivers/gpu/foo.c:123\n"
    ra, rb, ra2 = store.file(a), store.file(b), store.file(a2)
    assert ra.fault_id != rb.fault_id and ra2.fault_id == ra.fault_id


def test_a_fault_seen_on_an_odd_firmware_string_can_still_be_shown(store: RmaStore) -> None:
    r = store.file(make_report("v1", log="oom_stb_app.log", firmware="2.10.0"))
    store.file(make_report("v2", log="oom_stb_app.log", firmware="???"))
    store.file(make_report("v3", log="oom_stb_app.log", firmware="2.9.1"))
    shown = store.fault(r.fault_id)
    assert shown is not None and shown["firmware_versions"] == ["2.9.1", "2.10.0", "???"]


def test_a_report_with_an_unreadable_start_time_is_refused_with_a_clear_error(store: RmaStore) -> None:
    for started in ("yesterday", 1e20):
        report = make_report("t1", log="oom_stb_app.log")
        report.started = started
        with pytest.raises(TestError, match="FaultReport.started is not a time"):
            store.file(report)
    with pytest.raises(TestError, match="not a device fault"):
        store.file(make_report("t2", log="oom_stb_app.log", outcome=None))


def test_a_reproduction_on_an_odd_firmware_string_is_recorded(store: RmaStore) -> None:
    from lab.rma.models import Reproduction

    r = store.file(make_report("p9", log="softlockup.log", firmware="???"))
    policy = ReproductionPolicy()
    for _ in range(3):
        policy.record(True)
    store.record_reproduction(r.fault_id, policy, rig="stb-a", firmware_version="???")
    with store.session() as s:
        assert s.execute(select(Reproduction.firmware_id)).scalar_one() is not None


def test_infra_errors_and_bad_reports_are_refused_with_a_clear_error(store: RmaStore) -> None:
    with pytest.raises(TestError, match="infra errors and test errors never are"):
        store.file(make_report("i1", log="oom_stb_app.log", outcome="infra_error"))
    with pytest.raises(TestError, match="device_serial"):
        store.file(make_report("i2", serial=""))
    assert count(store, Occurrence) == 0


def test_odd_firmware_version_is_filed_verbatim_never_lost(store: RmaStore) -> None:
    """A box may report any version string; the filing keeps it as given (and executes nothing)."""
    r = store.file(make_report("v1", firmware="latest; DROP TABLE faults"))
    assert r.fault_id is not None and not r.journaled
    assert [o["firmware"] for o in store.occurrences()] == ["latest; DROP TABLE faults"]


HOSTILE = [
    "'; DROP TABLE faults; --",
    'Robert"); DELETE FROM occurrences WHERE ("1"="1',
    "\x1b[2J\x1b[31mRED\x1b]0;pwned\x07 [bold]markup[/bold]",
    "nul\x00byte? no: unicode ✓ ñ 漢字 \u202e reversed",
    "x" * 1_000_000,
]


@pytest.mark.parametrize("hostile", HOSTILE, ids=["sqli", "sqli2", "escapes", "unicode", "huge"])
def test_hostile_strings_are_stored_and_read_back_verbatim(store: RmaStore, hostile: str) -> None:
    if "\x00" in hostile:
        hostile = hostile.replace("\x00", "")  # PostgreSQL text cannot hold NUL; nor can a console line
    r = store.file(
        make_report(
            "h-" + str(len(hostile)),
            title=hostile,
            message=hostile,
            excerpt=hostile,
            test_id="scenarios/t.py::test_" + hostile[:200],
            rig="rig-" + hostile[:50],
        )
    )
    occ = store.occurrences(fault_id=r.fault_id)[0]
    assert occ["message"] == hostile and occ["excerpt"] == hostile
    assert occ["rig"] == "rig-" + hostile[:50]
    assert store.fault(r.fault_id)["title"] == hostile.strip()
    assert store.faults()[0]["title"] == hostile.strip()
    assert count(store, Occurrence) == 1  # the tables are all still there


def test_audit_log_and_verdicts_are_append_only_in_the_database(store: RmaStore) -> None:
    import datetime as dt

    r = store.file(make_report("v1", log="oom_stb_app.log"))
    store.mark_fixed(r.fault_id, "2.2.0", actor="alice")
    case_id = store.create_case("SN-A0001", "no picture", dt.date(2026, 11, 1))
    ev = store.add_evidence(case_id, kind="brownout", source="ssh:/var/log/pmic", value="3 events")
    store.record_verdict(
        case_id, "no_fault_found", rule_set_version="warranty-rules/1", justification="j", evidence_ids=[ev]
    )
    for stmt in (
        "UPDATE audit_log SET actor = 'mallory'",
        "DELETE FROM audit_log",
        "UPDATE verdicts SET verdict = 'user_damage'",
        "DELETE FROM verdicts",
    ):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as c:
            c.execute(text(stmt))
    assert store.verify_audit().ok
    assert count(store, AuditEntry) >= 4 and count(store, Verdict) == 1
