"""The local journal on its own: torn lines, transient failures during replay."""

from __future__ import annotations

from pathlib import Path

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
