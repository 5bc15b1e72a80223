"""Many filers at once, a filer killed mid-transaction, the database down then up."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import func, select

from lab.rma import RmaStore
from lab.rma.models import AuditEntry, Fault, FaultSignature, Occurrence, TestRun

from .conftest import make_report
from .filer_proc import batch, report

FILER = Path(__file__).with_name("filer_proc.py")
WORKERS = 16
GROUP = 10  # occurrences per pair of workers


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[2]), env.get("PYTHONPATH", "")])
    return env


def _count(store: RmaStore, model) -> int:
    with store.session() as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


def test_sixteen_processes_filing_at_once_store_each_occurrence_once_and_one_fault_per_bug(
    db_url: str, tmp_path: Path
) -> None:
    ctx = multiprocessing.get_context("fork")  # children share the parent's imports: no 16x import cost
    go, queue = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=batch, args=(db_url, tmp_path, w, GROUP, go, queue)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    go.set()
    results = []
    for _ in procs:
        results += queue.get(timeout=240)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0

    distinct = (WORKERS // 2) * GROUP
    assert len(results) == WORKERS * GROUP
    first_filings = [r for r in results if not r["replayed"]]
    assert len(first_filings) == distinct  # each occurrence stored by exactly one of its two filers
    assert sum(r["is_new"] for r in results) == 4  # one new fault per bug
    by_bug: dict[int, set[int]] = defaultdict(set)
    by_key: dict[str, set[int]] = defaultdict(set)
    for r in results:
        by_bug[r["j"] % 4].add(r["fault_id"])
        by_key[r["occurrence_key"]].add(r["occurrence_id"])
    journaled = [r for r in results if r["journaled"]]
    assert not journaled, journaled  # a busy database is waited for, not taken for a lost one
    assert all(len(ids) == 1 for ids in by_bug.values()), dict(by_bug)
    assert len({next(iter(ids)) for ids in by_bug.values()}) == 4
    assert all(len(ids) == 1 for ids in by_key.values())

    store = RmaStore(db_url)
    assert _count(store, Occurrence) == distinct and _count(store, TestRun) == distinct
    assert _count(store, Fault) == 4
    faults = store.faults()
    assert sorted(f["occurrences"] for f in faults) == [distinct // 4] * 4
    oops = next(f for f in faults if f["kind"] == "oops")
    detail = store.fault(oops["id"])
    assert detail["rigs"] == 3 and detail["devices"] == 5 and len(detail["firmware_versions"]) > 1
    check = store.verify_audit()
    assert check.ok and check.entries == 4 + distinct, check.problems  # 4 faults created, each occurrence filed
    assert check.counts["occurrences"] == distinct and check.head is not None and check.head[0] == 4 + distinct
    # The head file saw the head of every commit (one per filing: a new fault's two entries commit together).
    from lab.rma.audit import read_head_file

    anchors, bad = read_head_file(store.audit_head_path)
    assert not bad and max(anchors) == check.head and len({s for s, _ in anchors}) == distinct


def _wait_for(proc: subprocess.Popen[str], word: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if word in line:
            return
        if not line and proc.poll() is not None:
            raise AssertionError(f"filer exited early: {proc.stderr.read() if proc.stderr else ''}")
    raise AssertionError(f"filer never printed {word}")


def test_a_filer_killed_mid_transaction_leaves_nothing_half_written(db_url: str, tmp_path: Path) -> None:
    store = RmaStore.open(db_url, artifact_root=tmp_path / "artifacts")
    proc = subprocess.Popen(
        [sys.executable, str(FILER), "hang", db_url, str(tmp_path), "killed-1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        _wait_for(proc, "INSIDE")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # The fault, its signatures, the test run and the audit entry were written in that transaction too.
    for model in (Occurrence, TestRun, Fault, FaultSignature, AuditEntry):
        assert _count(store, model) == 0, model.__tablename__
    if db_url.endswith(".sqlite"):
        with store.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    again = report(0)
    again.occurrence_key = "killed-1"
    result = store.file(again)  # the killed filer's locks are gone: this neither blocks nor doubles
    assert result.is_new and not result.replayed
    assert _count(store, Occurrence) == 1 and store.verify_audit().ok


def test_database_down_then_up_journal_replays_once_without_duplicates(pg_cluster, tmp_path: Path) -> None:
    url = pg_cluster.create_db()
    store = RmaStore(url, artifact_root=tmp_path / "artifacts", journal_path=tmp_path / "journal.jsonl")
    console = tmp_path / "console.log"
    console.write_text("the console log of the run\n")
    assert store.file(make_report("before", log="oom_stb_app.log")).fault_id
    pg_cluster.stop()
    try:
        down = [
            store.file(make_report(f"down-{i}", log=log, artifacts={"console.log": console}))
            for i, log in enumerate(["oom_stb_app.log", "softlockup.log", "oom_stb_app_2.log"])
        ]
        # the same occurrence filed twice while down (a retry by the plugin) is journaled twice ...
        down.append(store.file(make_report("down-0", log="oom_stb_app.log")))
        assert all(r.journaled and r.fault_id is None for r in down)
        assert down[1].title == "BUG: soft lockup in hdmi_hpd_poll"
        assert len(store.journal) == 4
        with pytest.raises(Exception, match="cannot be reached"):
            RmaStore.open(url)
    finally:
        pg_cluster.start()
    # ... the next filing that reaches the database replays the journal first
    after = store.file(make_report("after", log="segfault_dvbd.log"))
    assert after.fault_id is not None
    assert len(store.journal) == 0
    assert store.replay_journal() == (0, 0)
    keys = [o["key"] for o in store.occurrences(limit=100)]
    assert sorted(keys) == sorted(["before", "down-0", "down-1", "down-2", "after"])
    faults = {f["title"]: f["occurrences"] for f in store.faults()}
    assert faults == {
        "out of memory: killed stb_app": 3,
        "BUG: soft lockup in hdmi_hpd_poll": 1,
        "segfault in dvbd (libdvbpsi.so)": 1,
    }
    occ = next(o for o in store.fault(store.occurrences(limit=100)[-1]["fault_id"])["recent_occurrences"])
    assert occ is not None
    down0 = [o for o in store.occurrences(limit=100) if o["key"] == "down-0"][0]
    arts = store.fault(down0["fault_id"])["recent_occurrences"]
    names = {a["name"] for o in arts if o["key"] == "down-0" for a in o["artifacts"]}
    assert names == {"console.log"}  # the artifact stored while the database was down is linked on replay


def test_replaying_the_same_journal_from_two_stores_files_each_entry_once(tmp_path: Path) -> None:
    db = tmp_path / "rma.sqlite"
    journal = tmp_path / "journal.jsonl"
    from lab.rma.journal import Journal

    a = RmaStore(db, journal_path=journal)
    entries = [make_report(f"j{i}", log="oom_stb_app.log").to_json() for i in range(5)]
    j = Journal(journal)
    for e in entries:
        j.append({"version": 1, "report": e, "artifacts": []})
    j.append({"version": 1, "report": {"rig": "stb-a", "unknown_field_only": True}})  # can never be filed
    j.append({"version": 1, "report": make_report("j-last", log="oom_stb_app.log").to_json(), "artifacts": []})
    with journal.open("a") as f:
        f.write('{"version": 1, "report": {"rig": "torn')  # the machine died mid-write
    copy = tmp_path / "journal-copy.jsonl"
    copy.write_bytes(journal.read_bytes())
    b = RmaStore(db, journal_path=copy)  # e.g. a restored backup of the same journal
    assert a.replay_journal() == (6, 0)  # the bad entry does not block the one behind it
    assert b.replay_journal() == (6, 0)  # replayed again: idempotent by occurrence key
    assert _count(a, Occurrence) == 6
    assert a.faults()[0]["occurrences"] == 6
    bad = (tmp_path / "journal.jsonl.bad").read_text()
    assert "torn" in bad and "unknown_field_only" in bad and "TypeError" in bad


def test_a_busy_fresh_sqlite_database_is_waited_for_not_journaled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many filers opening a fresh file at once see "database is locked" past the busy timeout now
    and then; that filing used to be journaled (no fault id in its result) as if the database were down."""
    import sqlite3
    import threading

    from lab.rma import db

    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 100)  # the lock below outlasts it several times
    path = tmp_path / "rma.sqlite"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")  # another process switching the fresh file to WAL, migrating it
    released = threading.Event()

    def release() -> None:
        holder.execute("COMMIT")
        holder.close()
        released.set()

    timer = threading.Timer(0.8, release)
    timer.start()
    try:
        store = RmaStore(path, artifact_root=tmp_path / "artifacts", journal_path=tmp_path / "journal.jsonl")
        result = store.file(make_report("busy-1", log="oom_stb_app.log"))
    finally:
        timer.join(10)
    assert released.is_set()
    assert not result.journaled and result.fault_id is not None and result.is_new
    assert len(store.journal) == 0 and _count(store, Occurrence) == 1
    store.close()
