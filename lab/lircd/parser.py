"""Reading lircd.conf files: ``begin remote`` blocks into :class:`~lab.lircd.remote.Remote` objects."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from lab.lircd.format import _INTS, _KNOWN_FLAGS, _PAIRS, LircdError
from lab.lircd.remote import Remote


def _num(text: str) -> int:
    """A number as lircd reads it (strtoull base 0: 0x hex, leading-0 octal, else decimal)."""
    if len(text) > 1 and text[0] == "0" and text[1].isdigit():
        try:
            return int(text, 8)
        except ValueError:
            return int(text, 10)
    return int(text, 0)


def _words(line: str, in_codes: bool) -> list[str]:
    """The tokens of a line without comments, as lircd reads them.

    A line whose first token starts with ``#`` is a comment, except in a codes section where a key
    may be called ``#`` (``#   0x178E``); a later token starting with ``#`` starts a trailing comment.
    """
    words = line.split()
    if not words:
        return []
    if words[0].startswith("#"):
        is_key = in_codes and words[0] == "#" and len(words) > 1 and _is_num(words[1]) and not line.startswith("#")
        if not is_key:
            return []
        return [words[0]] + _until_comment(words[1:])
    return _until_comment(words)


def _until_comment(words: list[str]) -> list[str]:
    for i, w in enumerate(words):
        if w.startswith("#"):
            return words[:i]
    return words


def _is_num(text: str) -> bool:
    try:
        _num(text)
    except ValueError:
        return False
    return True


class _Reader:
    """The state of :func:`parse_remotes` while it walks a file: the remote and the section it is in."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.remotes: list[Remote] = []
        self.params: dict[str, tuple[int, list[str]]] | None = None
        self.codes: dict[str, list[int]] = {}
        self.raw: dict[str, list[int]] = {}
        self.section: str | None = None  # None, "codes" or "raw_codes"
        self.raw_key: str | None = None
        self.sink: list[int] = []
        self.remote_line = 0

    def err(self, line_no: int, problem: str) -> LircdError:
        return LircdError(f"{self.source}:{line_no}: {problem}")

    def line(self, line_no: int, line: str) -> None:
        """Take one line of the file."""
        words = _words(line, self.section == "codes")
        if not words:
            return
        head = words[0].lower()
        if head == "begin":
            self.begin(line_no, words)
        elif head == "end":
            self.end(line_no, words)
        elif self.params is None:
            raise self.err(line_no, f"{words[0]!r} outside 'begin remote' ... 'end remote'")
        elif self.section == "codes":
            self.code(line_no, words)
        elif self.section == "raw_codes":
            self.raw_timings(line_no, words, head)
        else:
            self.parameter(line_no, words, head)

    def begin(self, line_no: int, words: list[str]) -> None:
        what = words[1].lower() if len(words) > 1 else ""
        if what == "remote":
            if self.params is not None:
                raise self.err(line_no, "'begin remote' inside a remote (missing 'end remote'?)")
            self.params, self.codes, self.raw, self.section, self.raw_key = {}, {}, {}, None, None
            self.remote_line = line_no
        elif what in ("codes", "raw_codes"):
            if self.params is None:
                raise self.err(line_no, f"'begin {what}' outside a remote")
            if self.section is not None:
                raise self.err(line_no, f"'begin {what}' inside 'begin {self.section}'")
            self.section, self.raw_key = what, None
        else:
            raise self.err(line_no, f"unknown section 'begin {' '.join(words[1:])}' (remote, codes or raw_codes)")

    def end(self, line_no: int, words: list[str]) -> None:
        what = words[1].lower() if len(words) > 1 else ""
        if what in ("codes", "raw_codes"):
            if self.section != what:
                raise self.err(line_no, f"'end {what}' without 'begin {what}'")
            self.section, self.raw_key = None, None
        elif what == "remote":
            if self.params is None:
                raise self.err(line_no, "'end remote' without 'begin remote'")
            if self.section is not None:
                raise self.err(line_no, f"'end remote' inside 'begin {self.section}' (missing 'end {self.section}')")
            self.remotes.append(_build_remote(self.params, self.codes, self.raw, self.source, self.remote_line))
            self.params = None
        else:
            raise self.err(line_no, f"unknown 'end {' '.join(words[1:])}'")

    def code(self, line_no: int, words: list[str]) -> None:
        if len(words) < 2:
            raise self.err(line_no, f"key {words[0]!r} has no code")
        try:
            values = [_num(w) for w in words[1:]]
        except ValueError:
            raise self.err(line_no, f"key {words[0]!r}: code {' '.join(words[1:])!r} is not a number") from None
        self.codes.setdefault(words[0], values)  # a key listed twice: lircd sends the first

    def raw_timings(self, line_no: int, words: list[str], head: str) -> None:
        if head == "name":
            if len(words) != 2:
                raise self.err(line_no, "'name' in raw_codes needs exactly one key name")
            self.raw_key = words[1]
            # a repeated name: the first wins
            self.sink = self.raw.setdefault(self.raw_key, []) if self.raw_key not in self.raw else []
            return
        if self.raw_key is None:
            raise self.err(line_no, "raw timings before any 'name KEY' line")
        try:
            nums = [int(w) for w in words]
        except ValueError:
            problem = f"raw key {self.raw_key!r}: {' '.join(words)!r} is not a list of durations"
            raise self.err(line_no, problem) from None
        if any(n <= 0 for n in nums):
            raise self.err(line_no, f"raw key {self.raw_key!r}: durations must be positive")
        self.sink.extend(nums)

    def parameter(self, line_no: int, words: list[str], head: str) -> None:
        assert self.params is not None
        key = "toggle_bit" if head == "repeat_bit" else head  # repeat_bit: the old name of toggle_bit
        if key in self.params:
            raise self.err(line_no, f"parameter {key!r} given twice (first on line {self.params[key][0]})")
        self.params[key] = (line_no, words[1:])

    def finish(self) -> list[Remote]:
        """The remotes read, once the whole file is in (LircdError for a block left open)."""
        if self.params is not None:
            if self.section is None:  # report a bad value on its own line before the missing end
                _build_remote(self.params, self.codes, self.raw, self.source, self.remote_line)
            raise LircdError(f"{self.source}:{self.remote_line}: 'begin remote' never ended (missing 'end remote')")
        if self.section is not None:
            raise LircdError(f"{self.source}: 'begin {self.section}' never ended")
        return self.remotes


def parse_remotes(text: str, source: str = "<string>") -> list[Remote]:
    """Parse the text of a lircd.conf file into its remotes (file order).

    Raises :class:`LircdError` with ``source:line: problem`` for anything malformed.
    """
    reader = _Reader(source)
    for line_no, line in enumerate(text.splitlines(), start=1):
        reader.line(line_no, line)
    return reader.finish()


def _build_remote(
    params: dict[str, tuple[int, list[str]]],
    codes: dict[str, list[int]],
    raw: dict[str, list[int]],
    source: str,
    at: int,
) -> Remote:
    """One remote from its parameters and keys, checked as lircd checks it (``at``: its begin line)."""
    if "name" not in params or not params["name"][1]:
        raise LircdError(f"{source}:{at}: remote has no 'name'")
    r = Remote(name=" ".join(params["name"][1]), source=source, codes=codes, raw_codes=raw)
    for key, (line_no, vals) in params.items():
        if key != "name":
            try:
                _set_parameter(r, key, vals)
            except ValueError as exc:
                raise LircdError(f"{source}:{line_no}: {exc}") from None
    _derive_masks(r, params, source)
    _check_remote(r, params, source, at)
    return r


def _set_parameter(r: Remote, key: str, vals: list[str]) -> None:
    """Set one parameter line on ``r``; ValueError with the problem (the caller adds file and line)."""
    text = " ".join(vals)
    if key == "flags":
        flags = {f.strip().upper() for f in "".join(vals).split("|") if f.strip()}
        unknown = flags - _KNOWN_FLAGS
        if unknown:
            raise ValueError(f"unknown flag(s) {', '.join(sorted(unknown))}")
        r.flags = frozenset(flags)
    elif key in _PAIRS:
        _set_pair(r, key, vals)
    elif key == "gap":
        if not 1 <= len(vals) <= 2:
            raise ValueError(f"'gap' needs 1 or 2 numbers, got {text!r}")
        try:
            r.gap = _num(vals[0])
            r.gap2 = _num(vals[1]) if len(vals) == 2 else 0
        except ValueError:
            raise ValueError(f"'gap' is not a number: {text!r}") from None
    elif key in _INTS:
        _set_int(r, key, vals)
    else:  # _STRINGS, and unknown parameters (lircd also warns and carries on)
        r.extra[key] = text


def _set_pair(r: Remote, key: str, vals: list[str]) -> None:
    problem = f"{key!r} needs 2 numbers (pulse space), got {' '.join(vals)!r}"
    if len(vals) != 2:
        raise ValueError(problem)
    try:
        pair = (_num(vals[0]), _num(vals[1]))
    except ValueError:
        raise ValueError(problem) from None
    if min(pair) < 0:
        raise ValueError(f"{key!r} durations must not be negative")
    attr = {"repeat": "repeat_code", "two": None, "three": None}.get(key, key)
    if attr:
        setattr(r, attr, pair)
    else:
        r.extra[key] = " ".join(vals)


def _set_int(r: Remote, key: str, vals: list[str]) -> None:
    if len(vals) != 1:
        raise ValueError(f"{key!r} needs one number, got {' '.join(vals) or 'nothing'!r}")
    try:
        value = _num(vals[0])
    except ValueError:
        raise ValueError(f"{key!r} is not a number: {vals[0]!r}") from None
    if value < 0:
        raise ValueError(f"{key!r} must not be negative")
    if key == "toggle_bit":
        r.extra["toggle_bit"] = str(value)
    elif hasattr(r, key):
        setattr(r, key, value)
    else:
        r.extra[key] = str(value)


def _derive_masks(r: Remote, params: dict[str, tuple[int, list[str]]], source: str) -> None:
    """The toggle and RC-6 trailer masks the parameters imply."""
    # lircd: toggle_bit N is bit N counted from the most significant bit (1-based) of the frame.
    if "toggle_bit" in r.extra and not r.toggle_bit_mask:
        n = int(r.extra["toggle_bit"])
        if n > 0:
            if n > r.all_bits:
                problem = f"toggle_bit {n} is beyond the {r.all_bits} bits of a frame"
                raise LircdError(f"{source}:{params['toggle_bit'][0]}: {problem}")
            r.toggle_bit_mask = 1 << (r.all_bits - n)
    if "RC6" in r.flags and not r.rc6_mask and r.all_bits >= 5:
        r.rc6_mask = 1 << (r.all_bits - 5)  # RC-6: the trailer (toggle) bit is double width


def _check_remote(r: Remote, params: dict[str, tuple[int, list[str]]], source: str, at: int) -> None:
    """What a complete remote must satisfy (codes fit their bits, something to send)."""

    def err(line_no: int, problem: str) -> LircdError:
        return LircdError(f"{source}:{line_no}: {problem}")

    if not r.is_raw:
        if r.bits <= 0 and r.codes:
            raise err(params.get("bits", (at, []))[0], "remote has codes but no 'bits'")
        if r.codes and r.one == (0, 0):
            raise err(params.get("one", (at, []))[0], "remote has codes but no 'one' timing")
        for key, values in r.codes.items():
            for v in values:
                if r.bits and v >> r.bits:
                    problem = f"key {key!r} code {v:#x} is wider than bits={r.bits}"
                    raise LircdError(f"{source}: remote {r.name!r}: {problem}")
    if r.pre_data >> max(r.pre_data_bits, 0) and r.pre_data:
        raise err(params["pre_data"][0], f"pre_data {r.pre_data:#x} is wider than pre_data_bits={r.pre_data_bits}")
    if r.post_data >> max(r.post_data_bits, 0) and r.post_data:
        raise err(params["post_data"][0], f"post_data {r.post_data:#x} is wider than post_data_bits={r.post_data_bits}")
    if r.frequency == 0:
        r.frequency = 38000
    if not r.codes and not r.raw_codes:
        raise err(at, f"remote {r.name!r} defines no keys")


def load_remotes(path: str | os.PathLike[str]) -> list[Remote]:
    """Read a lircd.conf file and return every remote it defines, in file order."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise LircdError(f"{p}: cannot read remote file: {exc.strerror or exc}") from exc
    text = data.decode("utf-8", errors="replace")
    remotes = parse_remotes(text, str(p))
    if not remotes:
        raise LircdError(f"{p}: no 'begin remote' block in the file")
    return remotes


def pick_remote(remotes: Sequence[Remote], name: str | None, source: object, *, hint: str = "name one") -> Remote:
    """The remote called ``name`` (the only one when ``name`` is None); LircdError naming ``source``."""
    names = ", ".join(r.name for r in remotes)
    if name is None:
        if len(remotes) != 1:
            raise LircdError(f"{source}: {len(remotes)} remotes ({names}); {hint}")
        return remotes[0]
    for r in remotes:
        if r.name == name:
            return r
    raise LircdError(f"{source}: no remote named {name!r} (have: {names})")


def load_remote(path: str | os.PathLike[str], name: str | None = None) -> Remote:
    """The remote called ``name`` in the file at ``path`` (the only one when ``name`` is None)."""
    return pick_remote(load_remotes(path), name, path)
