"""A package face whose public names are imported when first used (PEP 562).

A package ``__init__`` that re-exports names from heavy submodules makes every import of the
package pay for them. :func:`lazy_names` gives the module-level ``__getattr__`` and ``__dir__``
that import a name's submodule only when the name is first asked for.

Example (in ``lab/jobs/__init__.py``)::

    _HOME = {"run_job": "runner", "JobSpec": "spec"}
    __getattr__, __dir__ = lazy_names(__name__, _HOME)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, homes: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``homes`` maps a public name to the submodule
    (relative to ``package``) that defines it; the value is kept in the package once loaded."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{home}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(homes))

    return __getattr__, __dir__


__all__ = ["lazy_names"]
