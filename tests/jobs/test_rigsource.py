"""`--rigs` sources of the job commands: a path passes through, a bad labgrid:// URL is bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.errors import RigFileError
from lab.jobs.rigsource import STATUS_ENV, held_rigs, is_url


def test_a_rig_file_passes_through_untouched(tmp_path: Path) -> None:
    with held_rigs("rigs/emulated.yaml", tmp_path / "run") as held:
        assert held.rig_file == Path("rigs/emulated.yaml") and held.lost() == {}
        held.check()  # nothing held, nothing lost
        assert STATUS_ENV not in os.environ
    assert not (tmp_path / "run").exists()  # a plain file needs no run folder
    assert is_url("labgrid://c:1/?name=a") and not is_url(Path("labgrid-rigs.yaml"))


@pytest.mark.parametrize(
    ("url", "key"),
    [("labgrid://c:x/?model=A", "port"), ("labgrid://c:1/?name=a&count=2", "count"), ("labgrid://c:1/p", "path")],
)
def test_a_bad_labgrid_url_is_bad_input_naming_the_key(tmp_path: Path, url: str, key: str) -> None:
    with pytest.raises(RigFileError, match=f"key '{key}'"), held_rigs(url, tmp_path / "run"):
        pass
    assert not (tmp_path / "run").exists()
