"""Moving a database filed under fingerprint v2 to v3: filing links old faults, ``rma retitle`` splits and merges.

A database written by stblab before v3 is made by filing with v2 titles (the fingerprint function
filing calls, swapped for the v2 one: exactly what the older release computed), on SQLite and on a
private PostgreSQL cluster.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from lab.rma import RmaStore, filing
from lab.rma import retitle as rt
from lab.rma.audit import verify_audit
from lab.rma.cli import app
from lab.rma.models import AuditEntry, Fault, FaultSignature, Occurrence

from .conftest import make_report

CRASHES = Path(__file__).resolve().parents[1] / "data" / "crashes"


def crash(name: str) -> str:
    return (CRASHES / name).read_text()


@contextmanager
def filed_by_v2(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """File as the stblab release before v3 did (v2 titles, v2 and v1 hashes)."""
    v3 = filing.report_fingerprint
    with monkeypatch.context() as m:
        m.setattr(filing, "report_fingerprint", lambda report, algorithm_version=2: v3(report, algorithm_version))
        yield


def file(store: RmaStore, key: str, name: str):  # type: ignore[no-untyped-def]
    text = crash(name)
    report = make_report(key, excerpt=text)  # the plugin stores the console excerpt it fingerprints
    report.console_log = text
    return store.file(report)


def audit_actions(store: RmaStore) -> list[str]:
    with store.session() as s:
        return list(s.execute(select(AuditEntry.action).order_by(AuditEntry.seq)).scalars())


def assert_counters_match_rows(store: RmaStore) -> None:
    with store.session() as s:
        for f in s.execute(select(Fault)).scalars():
            n = s.execute(select(func.count(Occurrence.id)).where(Occurrence.fault_id == f.id)).scalar_one()
            assert f.occurrence_count == n, f"fault {f.id}: counter {f.occurrence_count}, rows {n}"


V2_ONE_FAULT = {  # v2 titled both "rcu stall" / "BUG: memory leak": two bugs in one fault each
    "rcu-a": "x86-rcu-stall-ts_demux_packet.log",
    "rcu-b": "arm64-rcu-stall-mali_kbase_jd_done.log",
    "leak-a": "x86-kmemleak-stb_epg_add_event.log",
    "leak-b": "x86-kmemleak-hdmi_cec_log_msg.log",
    "leak-a2": "arm64-kmemleak-stb_epg_add_event.log",  # v2 found no crash here: filed as "other"
}
V2_TWO_FAULTS = {  # one bug v2 split in two ("NULL pointer dereference" / "... in _adap_transmit")
    "cec-a": "dmesgT-arm64-null-cec.log",
    "cec-b": "arm64-null-cec_adap_transmit.log",
}


def test_retitle_splits_merged_faults_merges_split_ones_in_one_audited_step(
    store: RmaStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with filed_by_v2(monkeypatch):
        ids = {k: file(store, k, n).fault_id for k, n in {**V2_ONE_FAULT, **V2_TWO_FAULTS}.items()}
    assert ids["rcu-a"] == ids["rcu-b"] and ids["leak-a"] == ids["leak-b"] != ids["leak-a2"]
    assert store.fault(ids["leak-a2"])["kind"] == "other"
    assert ids["cec-a"] != ids["cec-b"]
    before = audit_actions(store)

    with store.session() as s:
        plan = rt.plan(s)
    splits = plan.splits()
    assert set(splits) == {ids["rcu-a"], ids["leak-a"]}
    assert {g.fingerprint.title for g in splits[ids["leak-a"]]} == {
        "memory leak in stb_epg_add_event",
        "memory leak in hdmi_cec_log_msg",
    }
    merges = {g.fingerprint.title: set(g.from_faults) for g in plan.merges()}
    assert merges == {
        "BUG: unable to handle kernel NULL pointer dereference in cec_adap_transmit": {ids["cec-a"], ids["cec-b"]},
        "memory leak in stb_epg_add_event": {ids["leak-a"], ids["leak-a2"]},
    }
    assert audit_actions(store) == before  # planning changed nothing

    with store.session() as s, s.begin():
        done = rt.apply(s, rt.plan(s), actor="alice")
    assert len(done["created"]) == 2 and done["moved"] == 4

    titles = {f["title"]: f for f in store.faults()}
    assert titles["memory leak in stb_epg_add_event"]["occurrences"] == 2  # the larger group kept the fault
    assert titles["memory leak in stb_epg_add_event"]["id"] == ids["leak-a"]
    assert titles["memory leak in hdmi_cec_log_msg"]["occurrences"] == 1
    assert titles["INFO: rcu detected stall in ts_demux_packet"]["occurrences"] == 1
    assert titles["INFO: rcu detected stall in mali_kbase_jd_done_worker"]["occurrences"] == 1
    cec = titles["BUG: unable to handle kernel NULL pointer dereference in cec_adap_transmit"]
    assert cec["occurrences"] == 2
    assert all(f["algorithm_version"] == 3 for f in titles.values() if f["status"] != "duplicate")
    emptied = {ids["cec-a"], ids["cec-b"]} - {cec["id"]}
    [gone] = [store.fault(fid) for fid in emptied]
    assert gone is not None and gone["status"] == "duplicate" and gone["duplicate_of"] == cec["id"]
    assert gone["occurrences"] == 0
    assert_counters_match_rows(store)

    # Old hashes are kept, so an occurrence filed by a box still on the old release lands right.
    with store.session() as s:
        v2_sigs = s.execute(select(func.count()).where(FaultSignature.algorithm_version == 2)).scalar_one()
    assert v2_sigs >= 4
    with filed_by_v2(monkeypatch):
        assert file(store, "cec-old", "dmesgT-arm64-null-cec.log").fault_id == cec["id"]
    # ... and a new one under v3 finds its fault through the v3 title.
    assert (
        file(store, "rcu-new", "x86-rcu-stall-ts_demux_packet.log").fault_id
        == (titles["INFO: rcu detected stall in ts_demux_packet"]["id"])
    )

    actions = audit_actions(store)
    assert actions[len(before) :].count("faults.retitled") == 1  # one audited step
    with store.session() as s:
        assert verify_audit(s)
        again = rt.plan(s)
    assert again.changes == []  # nothing left to do: running it twice changes nothing


def test_filing_under_v3_takes_over_the_v2_fault_of_its_bug_but_not_another_bugs(
    store: RmaStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with filed_by_v2(monkeypatch):
        old = file(store, "k1", "x86-softlockup-hdmi_hpd_poll.log")
        merged = file(store, "k2", "x86-rcu-stall-ts_demux_packet.log")
        assert file(store, "k3", "arm64-rcu-stall-mali_kbase_jd_done.log").fault_id == merged.fault_id
    assert store.fault(old.fault_id)["title"] == "soft lockup in hdmi_hpd_poll"

    same = file(store, "k4", "arm-softlockup-hdmi_hpd_poll.log")
    assert (same.fault_id, same.is_new) == (old.fault_id, False)  # linked, not duplicated
    fault = store.fault(old.fault_id)
    assert fault["title"] == "BUG: soft lockup in hdmi_hpd_poll" and fault["algorithm_version"] == 3
    assert {s["algorithm_version"] for s in fault["signatures"]} >= {2, 3}
    assert "soft lockup in hdmi_hpd_poll" in {s["title"] for s in fault["signatures"]}  # the old title stays

    first = file(store, "k5", "x86-rcu-stall-ts_demux_packet.log")
    other = file(store, "k6", "arm64-rcu-stall-mali_kbase_jd_done.log")
    assert first.fault_id == merged.fault_id  # the first v3 bug takes the merged v2 fault over
    assert other.is_new and other.fault_id != merged.fault_id  # ... the other bug gets its own
    assert audit_actions(store).count("faults.retitled") == 2
    with store.session() as s:
        assert verify_audit(s)


def test_a_corrupted_report_never_takes_over_an_old_fault(store: RmaStore, monkeypatch: pytest.MonkeyPatch) -> None:
    with filed_by_v2(monkeypatch):
        old = file(store, "k1", "x86-panic-only-fatal-exception.log")
    again = file(store, "k2", "x86-panic-only-fatal-exception.log")
    assert again.is_new and again.fault_id != old.fault_id


def test_retitle_splits_init_panics_filed_when_the_exit_code_was_an_address(
    store: RmaStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """v3 of the first round made ``exitcode=0x0000000b`` an address: a SIGSEGV in init and a missing
    program (exit status 127) shared a fault. Titles now keep the code, and retitle splits them."""
    fpm = sys.modules["lab.rma.fingerprint"]  # (``lab.rma.fingerprint`` the attribute is a function)

    with monkeypatch.context() as m:
        m.setattr(fpm, "normalise_v3", fpm.normalise)  # the first round's v3 titles
        segv = file(store, "segv", "public/lkml-uclibc-init-bad-frame-panic.log")
        missing = file(store, "127", "public/blog-android-microdroid-panic-init.log")
    assert segv.fault_id == missing.fault_id
    assert store.fault(segv.fault_id)["title"] == "kernel panic: Attempted to kill init! exitcode=ADDR"

    with store.session() as s, s.begin():
        plan = rt.plan(s)
        assert set(plan.splits()) == {segv.fault_id}
        rt.apply(s, plan, actor="alice")
    titles = {f["title"]: f for f in store.faults()}
    assert titles["kernel panic: Attempted to kill init! exitcode=0x0000000b"]["occurrences"] == 1
    assert titles["kernel panic: Attempted to kill init! exitcode=0x00007f00"]["occurrences"] == 1
    assert_counters_match_rows(store)
    assert (
        file(store, "127-again", "public/lkml-arm64-panic-init-ldso-assert.log").fault_id
        == (titles["kernel panic: Attempted to kill init! exitcode=0x00007f00"]["id"])
    )


def rma(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


def test_the_retitle_command_shows_the_plan_then_applies_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = str(tmp_path / "rma.sqlite")
    store = RmaStore(db, artifact_root=tmp_path / "a", journal_path=tmp_path / "j.jsonl")
    with filed_by_v2(monkeypatch):
        for k, n in {**V2_ONE_FAULT, **V2_TWO_FAULTS}.items():
            file(store, k, n)
    store.close()

    code, out, _ = rma("retitle", "--dry-run", "--db", db)
    assert code == 0
    assert "splits: rcu stall" in out and "memory leak in hdmi_cec_log_msg" in out
    assert "merge into" in out and "dry run: nothing changed" in out
    code, out, _ = rma("faults", "--db", db)
    assert "rcu stall" in out  # the dry run changed nothing

    code, _, err = rma("retitle", "--db", db)
    assert code == 2 and "--actor" in err

    code, out, _ = rma("retitle", "--actor", "alice", "--json", "--db", db)
    assert code == 0
    data = json.loads(out)
    assert data["dry_run"] is False and data["applied"]["moved"] == 4
    assert data["plan"]["algorithm_version"] == 3 and data["plan"]["splits"]

    code, out, _ = rma("faults", "--db", db)
    assert "INFO: rcu detected stall in mali_kbase_jd_done_worker" in out and "rcu stall" not in out
    code, out, _ = rma("retitle", "--dry-run", "--db", db)
    assert "nothing to change" in out
    code, out, _ = rma("audit", "--db", db)
    assert code == 0 and "chain intact" in out
