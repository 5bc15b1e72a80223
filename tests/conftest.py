"""Suite-wide fixtures and markers for stblab's own tests (helpers: tests/support.py).

Markers are applied here from what a test uses, so ``-m`` selects reliably:

* ``emulator`` -- starts ``stblab emulate`` (its module or a conftest above it uses the emulated
  lab); ``pytest -m "not emulator and not slow"`` is the quick unit loop (see CONTRIBUTING.md).
* ``needs_root`` -- needs network namespaces (root or CAP_NET_ADMIN); skipped without them.
* ``postgres`` -- runs against a private PostgreSQL cluster (Debian's postgresql binaries).
* ``slow`` and ``real_peer`` are set by the tests themselves.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # `from support import ...` from any test folder
    sys.path.insert(0, str(TESTS))

from marking import uses_emulator  # noqa: E402
from support import start_lab  # noqa: E402

from lab.emulator.launcher import EmulatedLab  # noqa: E402


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """``-n N`` without ``--dist``: each test file goes whole to one worker, in collection order.

    A file's module-scoped labs (emulated boxes, a browser, a labgrid coordinator) then start once
    instead of once per worker, and with :func:`heavy_modules_first` the long files start first, so
    the run ends on small ones. An explicit ``--dist`` is left alone.
    """
    if config.getoption("numprocesses", None) and config.getoption("dist", "no") == "no":
        config.option.dist = "loadfile"
        config.option.loadscopereorder = False  # keep heavy_modules_first's order (xdist sorts by test count)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by what it needs (see the module docstring)."""
    try:
        from lab.network.netns import NO_NETNS_REASON
    except ImportError:  # pragma: no cover - the network package is part of lab
        NO_NETNS_REASON = None
    for item in items:
        if uses_emulator(item):
            item.add_marker(pytest.mark.emulator)
        if any(m.kwargs.get("reason") == NO_NETNS_REASON for m in item.iter_markers("skipif")):
            item.add_marker(pytest.mark.needs_root)
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and "postgresql" in callspec.params.values()
        if on_postgres or "pg_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
    items[:] = heavy_modules_first(items)


def _weight(item: pytest.Item) -> int:
    """0 for a ``slow`` test, 1 for one that starts the emulator, 2 for the rest."""
    if item.get_closest_marker("slow") is not None:
        return 0
    return 1 if item.get_closest_marker("emulator") is not None else 2


def heavy_modules_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """The items reordered module by module: modules with a slow test first, then those that start
    the emulator, then the rest; collection order otherwise (a module stays together, in order).

    Why: ``pytest -n 2`` hands tests out in this order, so the long end-to-end tests start early
    on both workers and the run ends on quick ones, instead of one worker finishing a 60 s job
    alone while the other waits. The order is the same in every worker (xdist requires it).
    """
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    order = sorted(modules.values(), key=lambda group: min(_weight(i) for i in group))  # stable
    return [item for group in order for item in group]


#: pytest plugins that no pytest started by these tests uses (the job runner's per-rig runs, `stblab
#: lab`, scenario runs): loading them costs each such process about a second of CPU (labgrid's
#: plugin alone ~0.9 s), and the suite starts a few hundred of them.
UNUSED_INNER_PLUGINS = ("labgrid", "hypothesispytest", "benchmark", "anyio")


@pytest.fixture(scope="session", autouse=True)
def _inner_pytest_without_unused_plugins() -> Iterator[None]:
    """Every pytest these tests start skips :data:`UNUSED_INNER_PLUGINS` (``PYTEST_ADDOPTS``).

    Set in the process that runs the tests (an xdist worker), after its own options were read, so
    this suite's own plugins are untouched. Pytester drops ``PYTEST_ADDOPTS``; ``run_inner`` in
    tests/plugin passes the same flags itself.
    """
    before = os.environ.get("PYTEST_ADDOPTS")
    flags = " ".join(f"-p no:{name}" for name in UNUSED_INNER_PLUGINS)
    os.environ["PYTEST_ADDOPTS"] = f"{before} {flags}" if before else flags
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTEST_ADDOPTS", None)
        else:
            os.environ["PYTEST_ADDOPTS"] = before


@pytest.fixture(scope="session")
def emulated_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., EmulatedLab]]:
    """A factory of running emulated labs, shared by the whole session.

    ``emulated_lab(("stb-a",), firmware="2.1.0")`` starts a lab the first time it is asked for
    with these arguments and returns the same running lab afterwards; every lab stops at the end
    of the session. Arguments are those of :func:`support.start_lab`; ``key=`` names a lab
    explicitly (two modules that want separate boxes with equal settings pass different keys).
    Tests that change a box persistently (firmware, files) should take their own key.
    """
    labs: dict[str, EmulatedLab] = {}

    def get(rigs: tuple[str, ...] = ("stb-a",), *, key: str | None = None, **options: Any) -> EmulatedLab:
        name = key or repr((tuple(rigs), sorted(options.items())))
        if name not in labs:
            lab = start_lab(tmp_path_factory.mktemp("lab"), rigs, **options)
            lab.start()
            labs[name] = lab
        return labs[name]

    try:
        yield get
    finally:
        for lab in labs.values():
            lab.terminate()  # all labs stop at once, not one after another
        for lab in reversed(list(labs.values())):
            lab.stop()
