"""stblab's pytest plugin (registered through the ``pytest11`` entry point).

Adds ``--rigs FILE`` and ``--rig NAME|SELECTOR``; fixtures and outcome handling are built on top.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stblab", "stblab set-top-box lab")
    group.addoption("--rigs", metavar="FILE", default=None, help="rig file (rigs/*.yaml)")
    group.addoption("--rig", metavar="NAME", default=None, help="rig name or selector such as model=STB-4K-X1")
