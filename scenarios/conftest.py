"""Fixtures shared by the scenario suite (the lab fixtures come from stblab's pytest plugin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tv import Tv

HERE = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """scenarios/robustness runs only when named (it takes minutes to hours): the main job leaves it out."""
    robustness = HERE / "robustness"
    if collection_path.resolve() != robustness:
        return None
    named = [Path(str(a).split("::")[0]).resolve() for a in config.args]
    return None if any(p == robustness or robustness in p.parents for p in named) else True


@pytest.fixture
def tv(capture: Any, rig: Any) -> Tv:
    """Screen expectations (banner, motion, black) for this rig's model, on its HDMI capture."""
    return Tv(capture, model=rig.model, rig=rig.name)
