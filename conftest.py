"""Root conftest: makes sure stblab's pytest plugin is loaded, and points scenarios/ at a rig file.

The plugin normally arrives through the ``pytest11`` entry point of the installed distribution;
when running from a plain checkout without installing, it is loaded from here instead.

``pytest scenarios`` with no ``--rigs`` uses ``rigs/emulated.yaml`` (the emulated lab, started
on demand by ``--emulate auto``); the framework's own ``tests/`` are left alone.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent

# pytester drives the plugin's own tests (tests/plugin/) in real pytest subprocesses.
pytest_plugins = ["pytester"]
if not any(ep.name == "stblab" for ep in entry_points(group="pytest11")):
    pytest_plugins.append("lab.pytest_plugin")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Default ``--rigs rigs/emulated.yaml`` when only scenarios are being run."""
    if config.getoption("stblab_rigs", None):
        return
    scenarios = _HERE / "scenarios"
    base = config.invocation_params.dir
    paths = [(base / str(a).split("::", 1)[0]).resolve() for a in config.args]
    if paths and all(p == scenarios or scenarios in p.parents for p in paths):
        config.option.stblab_rigs = str(_HERE / "rigs" / "emulated.yaml")
