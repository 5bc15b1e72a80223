"""How the suite tells which tests start the emulator (the ``emulator`` marker, set in tests/conftest.py).

Read from the code's syntax tree, not its text: comments, docstrings and messages that mention the
words do not count, and ``--emulate never`` (``stblab lab ... --emulate never``) says it does not start.
String constants are read as command words, so a message holding ``"--emulate auto"`` does count.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass
from functools import cache

import pytest

#: What in a test's code (its function, its fixtures, the module helpers it calls) starts the emulator.
_STARTING_CALLS = frozenset({"EmulatedLab", "start_lab", "ensure_emulated"})  # called
_STARTING_NAMES = frozenset({"emulated_lab"})  # the session fixture, asked for or used
_EMULATE_OPTION = "--emulate"
_NOT_EMULATING = "never"


@cache
def _source(obj: object) -> str:
    """The source of a function or class ("" when it has none); cached: collection asks for each many times."""
    try:
        return inspect.getsource(obj)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return ""


@dataclass(frozen=True)
class _Code:
    """What a function's or class's code does, as far as starting the emulator goes."""

    called: frozenset[str]  # names called: ``f(...)``, ``x.f(...)``
    names: frozenset[str]  # names read or taken as parameters
    strings: tuple[str, ...]  # command words: string constants split on white space, in source order

    def starts(self) -> bool:
        """True when this code starts an emulator itself (helpers it calls aside)."""
        if self.called & _STARTING_CALLS or self.names & _STARTING_NAMES:
            return True
        words = self.strings
        for i, word in enumerate(words):
            if word in ("stblab", "lab.cli") and i + 1 < len(words) and words[i + 1] == "emulate":
                return True
            if word == _EMULATE_OPTION:
                value = words[i + 1] if i + 1 < len(words) else None
                if value != _NOT_EMULATING:
                    return True
            elif word.startswith(_EMULATE_OPTION + "=") and word.split("=", 1)[1] != _NOT_EMULATING:
                return True
        return False


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def code_of(source: str) -> _Code:
    """The :class:`_Code` of a function's or class's source (empty when it does not parse)."""
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return _Code(frozenset(), frozenset(), ())
    prose = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and _is_text(n.value)}  # docstrings
    called: set[str] = set()
    names: set[str] = set()
    texts: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                called.add(func.id)
            elif isinstance(func, ast.Attribute):
                called.add(func.attr)
        elif isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif _is_text(node) and id(node) not in prose:
            texts.append((node.lineno, node.col_offset, node.value))  # type: ignore[attr-defined]
    words = tuple(word for *_, text in sorted(texts) for word in text.split())
    return _Code(frozenset(called), frozenset(names), words)


@cache
def _code(obj: object) -> _Code:
    return code_of(_source(obj))


@cache
def _starts(obj: object) -> bool:
    return _code(obj).starts()


@cache
def _starting_helpers(module: object) -> frozenset[str]:
    """Names of the module's own functions and classes whose code starts the emulator."""
    own = getattr(module, "__name__", None)
    return frozenset(
        name
        for name, value in vars(module).items()
        if (inspect.isfunction(value) or inspect.isclass(value))
        and getattr(value, "__module__", None) == own
        and _starts(value)
    )


def uses_emulator(item: pytest.Item) -> bool:
    """True when the test, a fixture it uses or a module helper it calls starts the emulator."""
    func = getattr(item, "function", None)
    if func is None:
        return False
    if _starts(func):
        return True
    code = _code(func)
    if (code.called | code.names) & _starting_helpers(item.module):  # type: ignore[attr-defined]
        return True
    info = getattr(item, "_fixtureinfo", None)
    for name in getattr(item, "fixturenames", ()):
        for fixturedef in info.name2fixturedefs.get(name, ()) if info is not None else ():
            if _starts(fixturedef.func):
                return True
    return False
