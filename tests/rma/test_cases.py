"""RMA cases: states, evidence, immutable verdicts that supersede, overrides, the audit chain."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import text

from lab.errors import TestError
from lab.rma import RmaStore
from lab.rma.audit import verify_audit

from .conftest import make_report


def _case_with_evidence(store: RmaStore) -> tuple[int, list[int]]:
    case_id = store.create_case("SN-SURGE-01", "dead after thunderstorm", dt.date(2026, 11, 20), model="STB-4K-X1")
    ev = [
        store.add_evidence(case_id, kind="over_voltage", source="ssh:/var/log/pmic.log", value="2 events, 14.2 V"),
        store.add_evidence(case_id, kind="brownout", source="console:reset-reason", value="3 brownouts"),
        store.add_evidence(case_id, kind="tamper", source="ssh:/sys/class/tamper/state", value="closed"),
    ]
    return case_id, ev


def test_case_moves_through_its_states_and_refuses_impossible_moves(store: RmaStore) -> None:
    case_id, _ = _case_with_evidence(store)
    assert store.case(case_id)["state"] == "received"
    with pytest.raises(TestError, match="cannot go from received to closed; allowed: diagnosing"):
        store.set_case_state(case_id, "closed")
    with pytest.raises(TestError, match="unknown case state"):
        store.set_case_state(case_id, "lost")
    for state in ("diagnosing", "diagnosed", "replace", "closed"):
        store.set_case_state(case_id, state, actor="desk")
    assert store.case(case_id)["state"] == "closed"
    with pytest.raises(TestError, match="none \\(closed\\)"):
        store.set_case_state(case_id, "diagnosing")
    assert [c["state"] for c in store.cases(state="closed")] == ["closed"]


def test_verdict_keeps_its_evidence_rule_set_and_justification_and_a_new_one_supersedes(store: RmaStore) -> None:
    case_id, ev = _case_with_evidence(store)
    with pytest.raises(TestError, match="without evidence"):
        store.record_verdict(case_id, "user_damage", rule_set_version="r/1", justification="j", evidence_ids=[])
    with pytest.raises(TestError, match="unknown verdict"):
        store.record_verdict(case_id, "meh", rule_set_version="r/1", justification="j", evidence_ids=ev)
    other_case, other_ev = _case_with_evidence(store)
    with pytest.raises(TestError, match="does not belong to case"):
        store.record_verdict(
            case_id, "user_damage", rule_set_version="r/1", justification="j", evidence_ids=[other_ev[0]]
        )
    v1 = store.record_verdict(
        case_id,
        "user_damage",
        rule_set_version="warranty-rules/1",
        justification="over-voltage and brownouts: two independent indicators",
        evidence_ids=ev[:2],
        actor="warranty-rules",
    )
    case = store.case(case_id)
    assert case["verdict"]["verdict"] == "user_damage"
    assert case["verdict"]["rule_set_version"] == "warranty-rules/1"
    assert [e["kind"] for e in case["verdict"]["evidence_rows"]] == ["over_voltage", "brownout"]
    v2 = store.override_verdict(
        case_id, "no_fault_found", reason="surge log belongs to the bench PSU test", actor="carol"
    )
    case = store.case(case_id)
    assert case["verdict"]["id"] == v2 and case["verdict"]["supersedes"] == v1
    assert case["verdict"]["override_reason"] == "surge log belongs to the bench PSU test"
    assert case["verdict"]["evidence"] == ev[:2]  # the override keeps the evidence it overrules
    assert [v["verdict"] for v in case["verdicts"]] == ["user_damage", "no_fault_found"]
    assert store.cases(device="SN-SURGE-01")[0]["verdict"] in {"no_fault_found", None}
    with pytest.raises(TestError, match="needs a reason"):
        store.override_verdict(case_id, "user_damage", reason=" ", actor="carol")
    assert other_case != case_id


def test_a_device_known_from_a_case_learns_its_model_from_filing(store: RmaStore) -> None:
    case_id = store.create_case("SN-NEW-1", "reboots", dt.date(2026, 11, 3))
    assert store.case(case_id)["model"] == ""
    r = make_report("m1", log="oom_stb_app.log", serial="SN-NEW-1", model="STB-4K-X1", hardware_revision="B2")
    store.file(r)
    info = store.case(case_id)["device_info"]
    assert (info["model"], info["hardware_revision"]) == ("STB-4K-X1", "B2")
    assert store.case(case_id)["device_faults"][0]["title"] == "out of memory: killed stb_app"


def test_every_change_is_in_the_audit_log_and_tampering_is_detected(tmp_path: Path) -> None:
    store = RmaStore.open(tmp_path / "rma.sqlite")
    case_id, ev = _case_with_evidence(store)
    store.set_case_state(case_id, "diagnosing")
    store.record_verdict(
        case_id, "user_damage", rule_set_version="r/1", justification="two indicators", evidence_ids=ev[:2]
    )
    check = store.verify_audit()
    assert check.ok and check.entries == 6  # created, 3 evidence, state, verdict
    with store.session() as s:
        actions = [r[0] for r in s.execute(text("SELECT action FROM audit_log ORDER BY seq"))]
    assert actions == [
        "case.created",
        "evidence.added",
        "evidence.added",
        "evidence.added",
        "case.state",
        "verdict.recorded",
    ]
    # Someone with write access drops the trigger and rewrites history: the chain shows where.
    with store.engine.begin() as c:
        c.exec_driver_sql("DROP TRIGGER audit_log_no_update")
        c.exec_driver_sql('UPDATE audit_log SET detail = \'{"verdict":"no_fault_found"}\' WHERE seq = 6')
    with store.session() as s:
        broken = verify_audit(s)
    assert not broken and broken.bad_seq == 6 and "altered" in broken.problem
    with store.engine.begin() as c:
        c.exec_driver_sql("DROP TRIGGER audit_log_no_delete")
        c.exec_driver_sql("DELETE FROM audit_log WHERE seq = 3")
    with store.session() as s:
        assert "missing" in verify_audit(s).problem
