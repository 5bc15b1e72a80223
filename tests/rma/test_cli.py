"""``stblab rma``: listings with filters and JSON, hostile strings shown but never executed, exit codes."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lab.rma import RmaStore
from lab.rma.cli import app

from .conftest import make_report

ESC = "\x1b[2J\x1b]0;pwned\x07"
SQLI = "'; DROP TABLE faults; --"
MARKUP = "[bold red]not markup[/bold red]"


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def rma(*args: str, db: str | None = None) -> Ran:
    """Run ``stblab rma ARGS`` in this process (the same typer app the command dispatches to)."""
    argv = [*args, *(["--db", db] if db else [])]
    res = CliRunner().invoke(app, argv, catch_exceptions=False)
    return Ran(res.exit_code, res.stdout, res.stderr)


def test_the_stblab_command_dispatches_to_rma(tmp_path: Path) -> None:
    db = str(tmp_path / "rma.sqlite")
    RmaStore(db).file(make_report("x1", log="oom_stb_app.log"))
    res = subprocess.run(
        [sys.executable, "-m", "lab.cli", "rma", "faults", "--db", db], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0 and "out of memory: killed stb_app" in res.stdout


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> str:
    db = str(tmp_path_factory.mktemp("cli") / "rma.sqlite")
    store = RmaStore(db)
    hostile = f"{SQLI} {ESC} {MARKUP}"
    store.file(make_report("o1", log="arm_oops_decoder.log", firmware="2.1.0", serial="SN-1", message=hostile))
    store.file(make_report("o2", log="x86_oops_decoder.log", firmware="2.2.0", serial="SN-2", model="STB-HD-2"))
    store.file(make_report("o3", log="oom_stb_app.log", firmware="2.2.0", serial="SN-1"))
    store.file(make_report("o4", title=hostile, firmware="2.3.0", serial="SN-3"))
    old = make_report("o5", log="softlockup.log", firmware="1.0.0", serial="SN-9")
    old.started = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    store.file(old)
    store.mark_fixed(2, "2.3.0", actor="alice")  # the OOM
    case_id = store.create_case("SN-1", f"no picture {ESC}", dt.date(2026, 11, 2))
    ev = store.add_evidence(case_id, kind="brownout", source="console", value="3 brownouts")
    store.record_verdict(
        case_id,
        "no_fault_found",
        rule_set_version="warranty-rules/1",
        justification="did not reproduce in 10 runs",
        evidence_ids=[ev],
    )
    store.close()
    return db


def test_faults_json_and_filters(filled: str) -> None:
    res = rma("faults", "--json", db=filled)
    assert res.returncode == 0, res.stderr
    faults = json.loads(res.stdout)
    assert len(faults) == 4
    assert {f["occurrences"] for f in faults if f["kind"] == "oops"} == {2}
    assert [f["kind"] for f in json.loads(rma("faults", "--status", "fixed", "--json", db=filled).stdout)] == ["oom"]
    by_fw = json.loads(rma("faults", "--firmware", "2.2.0", "--json", db=filled).stdout)
    assert sorted(f["kind"] for f in by_fw) == ["oom", "oops"]
    by_model = json.loads(rma("faults", "--model", "STB-HD-2", "--json", db=filled).stdout)
    assert [f["kind"] for f in by_model] == ["oops"]
    recent = json.loads(rma("faults", "--since", "7d", "--json", db=filled).stdout)
    assert "watchdog" not in {f["kind"] for f in recent} and len(recent) == 3
    since = json.loads(rma("faults", "--since", "2019-12-31", "--json", db=filled).stdout)
    assert len(since) == 4


def test_hostile_strings_are_exact_in_json_and_escaped_in_the_terminal(filled: str) -> None:
    hostile = f"{SQLI} {ESC} {MARKUP}"
    res = rma("faults", db=filled)
    assert res.returncode == 0
    assert "\x1b" not in res.stdout and "\x07" not in res.stdout
    assert "\\x1b[2J" in res.stdout and SQLI in res.stdout and "[bold red]" in res.stdout
    data = json.loads(rma("faults", "--json", db=filled).stdout)
    assert hostile in [f["title"] for f in data]
    occ = json.loads(rma("occurrences", "--device", "SN-1", "--json", db=filled).stdout)
    assert hostile in [o["message"] for o in occ]
    shown = rma("fault", "1", db=filled).stdout
    assert "message: " + SQLI in shown and "\x1b" not in shown
    case = rma("case", "1", db=filled).stdout
    assert "\x1b" not in case and "no picture \\x1b[2J" in case


def test_fault_and_case_show_what_a_person_needs(filled: str) -> None:
    res = rma("fault", "1", db=filled)
    assert res.returncode == 0
    assert "fault 1: BUG: unable to handle kernel NULL pointer dereference in mpeg_decode_slice" in res.stdout
    assert "firmware     2.1.0, 2.2.0" in res.stdout
    assert "alternative" in res.stdout
    fixed = json.loads(rma("fault", "2", "--json", db=filled).stdout)
    assert fixed["status"] == "fixed" and fixed["fixed_in"] == "2.3.0"
    case = rma("case", "1", db=filled)
    assert "verdict      no_fault_found (rules warranty-rules/1" in case.stdout
    assert "#1 brownout: 3 brownouts (from console)" in case.stdout
    data = json.loads(rma("case", "1", "--json", db=filled).stdout)
    assert data["verdict"]["evidence_rows"][0]["kind"] == "brownout"
    listed = json.loads(rma("cases", "--json", db=filled).stdout)
    assert listed[0]["verdict"] == "no_fault_found" and listed[0]["device"] == "SN-1"


def test_occurrences_filters_and_device_history(filled: str) -> None:
    occ = json.loads(rma("occurrences", "--fault", "1", "--json", db=filled).stdout)
    assert [o["key"] for o in occ] == ["o2", "o1"]  # newest first
    assert json.loads(rma("occurrences", "--model", "STB-HD-2", "--json", db=filled).stdout)[0]["key"] == "o2"
    assert json.loads(rma("occurrences", "--status", "fixed", "--json", db=filled).stdout)[0]["key"] == "o3"
    hist = json.loads(rma("device", "SN-1", "--json", db=filled).stdout)
    assert sorted(o["key"] for o in hist) == ["o1", "o3"]
    assert rma("occurrences", "--device", "SN-NONE", db=filled).stdout.strip() == "(none)"


def test_exit_codes_and_clear_errors(filled: str, tmp_path: Path) -> None:
    res = rma("fault", "999", db=filled)
    assert res.returncode == 1 and "no fault with id 999" in res.stderr
    res = rma("faults", "--since", "last tuesday", db=filled)
    assert res.returncode == 2 and "neither an ISO date/time nor a span" in res.stderr
    res = rma("faults", db="postgresql://lab:s3cret-pw@127.0.0.1:1/rma")
    assert res.returncode == 3 and "cannot be reached" in res.stderr
    assert "s3cret-pw" not in res.stderr + res.stdout
    res = rma("fix", "1", "not a version!!", "--actor", "alice", db=filled)
    assert res.returncode == 2 and "not a firmware version" in res.stderr


def test_lifecycle_commands_and_audit(tmp_path: Path) -> None:
    db = str(tmp_path / "rma.sqlite")
    store = RmaStore(db)
    a = store.file(make_report("l1", log="oom_stb_app.log")).fault_id
    b = store.file(make_report("l2", log="oom_epg.log")).fault_id
    store.close()
    assert rma("fix", str(a), "2.2.0", "--actor", "alice", db=db).returncode == 0
    assert rma("duplicate", str(b), str(a), "--actor", "alice", db=db).returncode == 0
    assert rma("reopen", str(a), "--actor", "bob", "--reason", "seen on 2.2.1", db=db).returncode == 0
    assert rma("invalid", str(a), "--actor", "bob", "--reason", "bench PSU", db=db).returncode == 0
    statuses = {f["id"]: f["status"] for f in json.loads(rma("faults", "--json", db=db).stdout)}
    assert statuses == {a: "invalid", b: "duplicate"}
    res = rma("audit", "--json", db=db)
    assert res.returncode == 0 and json.loads(res.stdout)["entries"] == 8  # 2 faults, 2 filings, 4 changes
    res = rma("replay", db=db)
    assert res.returncode == 0 and "0 filed, 0 waiting" in res.stdout


def test_out_of_range_ids_and_spans_are_clear_errors_not_tracebacks(filled: str) -> None:
    huge = str(2**70)
    for args in (
        ("fault", huge),
        ("case", huge),
        ("fix", huge, "2.0", "--actor", "a"),
        ("occurrences", "--fault", huge),
        ("faults", "--since", "99999999999d"),
    ):
        res = rma(*args, db=filled)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert "Traceback" not in res.stderr


def test_every_command_disposes_of_the_engine_it_opened(filled: str, monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[object] = []
    real = RmaStore.close

    def close(self: RmaStore) -> None:
        closed.append(self)
        real(self)

    monkeypatch.setattr(RmaStore, "close", close)
    assert rma("faults", db=filled).returncode == 0
    assert rma("fault", "999", db=filled).returncode == 1
    assert len(closed) == 2
