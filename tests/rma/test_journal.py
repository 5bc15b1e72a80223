"""The local journal on its own: torn lines, transient failures during replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.rma.journal import Journal


def test_an_entry_appended_after_a_torn_line_is_not_swallowed_by_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    j = Journal(path)
    j.append({"n": 1})
    with path.open("a") as f:
        f.write('{"n": 2, "torn')  # the machine died mid-write
    j.append({"n": 3})  # the next filing while the database is still down
    assert j.entries() == [{"n": 1}, {"n": 3}]
    assert j.replay(lambda e: True) == (2, 0)
    assert "torn" in (tmp_path / "journal.jsonl.bad").read_text()


def test_a_filing_that_kept_conflicting_waits_in_the_journal_instead_of_going_to_bad(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lab.rma.store as storemod
    from lab.errors import InfraError
    from lab.rma import RmaStore

    from .conftest import make_report

    store = RmaStore(tmp_path / "rma.sqlite", journal_path=tmp_path / "journal.jsonl")
    store.journal.append({"version": 1, "report": make_report("c1", log="oom_stb_app.log").to_json(), "artifacts": []})
    real = storemod.file_fault

    def conflicting(*args: object, **kwargs: object) -> None:
        raise InfraError("filing 'c1' kept conflicting after 30 attempts", instrument="database")

    monkeypatch.setattr(storemod, "file_fault", conflicting)
    assert store.replay_journal() == (0, 1)
    assert not (tmp_path / "journal.jsonl.bad").exists()
    monkeypatch.setattr(storemod, "file_fault", real)
    assert store.replay_journal() == (1, 0)
    assert len(store.occurrences()) == 1
    store.close()
