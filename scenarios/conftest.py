"""Fixtures shared by the scenario suite (the lab fixtures come from stblab's pytest plugin)."""

from __future__ import annotations

from typing import Any

import pytest
from tv import Tv


@pytest.fixture
def tv(capture: Any, rig: Any) -> Tv:
    """Screen expectations (banner, motion, black) for this rig's model, on its HDMI capture."""
    return Tv(capture, model=rig.model, rig=rig.name)
