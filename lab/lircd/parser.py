"""Reading lircd.conf files: ``begin remote`` blocks into :class:`~lab.lircd.remote.Remote` objects."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from lab.lircd.format import _INTS, _KNOWN_FLAGS, _PAIRS, _STRINGS, LircdError
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


def parse_remotes(text: str, source: str = "<string>") -> list[Remote]:
    """Parse the text of a lircd.conf file into its remotes (file order).

    Raises :class:`LircdError` with ``source:line: problem`` for anything malformed.
    """
    remotes: list[Remote] = []
    params: dict[str, tuple[int, list[str]]] | None = None
    codes: dict[str, list[int]] = {}
    raw: dict[str, list[int]] = {}
    section: str | None = None  # None, "codes" or "raw_codes"
    raw_key: str | None = None
    sink: list[int] = []
    remote_line = 0

    def err(line_no: int, problem: str) -> LircdError:
        return LircdError(f"{source}:{line_no}: {problem}")

    for line_no, line in enumerate(text.splitlines(), start=1):
        words = _words(line, section == "codes")
        if not words:
            continue
        head = words[0].lower()
        if head == "begin":
            what = words[1].lower() if len(words) > 1 else ""
            if what == "remote":
                if params is not None:
                    raise err(line_no, "'begin remote' inside a remote (missing 'end remote'?)")
                params, codes, raw, section, raw_key, remote_line = {}, {}, {}, None, None, line_no
            elif what in ("codes", "raw_codes"):
                if params is None:
                    raise err(line_no, f"'begin {what}' outside a remote")
                if section is not None:
                    raise err(line_no, f"'begin {what}' inside 'begin {section}'")
                section, raw_key = what, None
            else:
                raise err(line_no, f"unknown section 'begin {' '.join(words[1:])}' (remote, codes or raw_codes)")
            continue
        if head == "end":
            what = words[1].lower() if len(words) > 1 else ""
            if what in ("codes", "raw_codes"):
                if section != what:
                    raise err(line_no, f"'end {what}' without 'begin {what}'")
                section, raw_key = None, None
            elif what == "remote":
                if params is None:
                    raise err(line_no, "'end remote' without 'begin remote'")
                if section is not None:
                    raise err(line_no, f"'end remote' inside 'begin {section}' (missing 'end {section}')")
                remotes.append(_build_remote(params, codes, raw, source, remote_line))
                params = None
            else:
                raise err(line_no, f"unknown 'end {' '.join(words[1:])}'")
            continue
        if params is None:
            raise err(line_no, f"{words[0]!r} outside 'begin remote' ... 'end remote'")
        if section == "codes":
            if len(words) < 2:
                raise err(line_no, f"key {words[0]!r} has no code")
            try:
                values = [_num(w) for w in words[1:]]
            except ValueError:
                raise err(line_no, f"key {words[0]!r}: code {' '.join(words[1:])!r} is not a number") from None
            codes.setdefault(words[0], values)  # a key listed twice: lircd sends the first
        elif section == "raw_codes":
            if head == "name":
                if len(words) != 2:
                    raise err(line_no, "'name' in raw_codes needs exactly one key name")
                raw_key = words[1]
                sink = raw.setdefault(raw_key, []) if raw_key not in raw else []  # a repeated name: first wins
                continue
            if raw_key is None:
                raise err(line_no, "raw timings before any 'name KEY' line")
            try:
                nums = [int(w) for w in words]
            except ValueError:
                raise err(line_no, f"raw key {raw_key!r}: {' '.join(words)!r} is not a list of durations") from None
            if any(n <= 0 for n in nums):
                raise err(line_no, f"raw key {raw_key!r}: durations must be positive")
            sink.extend(nums)
        else:
            key = head
            if key == "repeat_bit":  # the old name of toggle_bit
                key = "toggle_bit"
            if key in params:
                raise err(line_no, f"parameter {key!r} given twice (first on line {params[key][0]})")
            params[key] = (line_no, words[1:])
    if params is not None:
        if section is None:  # report a bad value on its own line before the missing end
            _build_remote(params, codes, raw, source, remote_line)
        raise LircdError(f"{source}:{remote_line}: 'begin remote' never ended (missing 'end remote')")
    if section is not None:
        raise LircdError(f"{source}: 'begin {section}' never ended")
    return remotes


def _build_remote(
    params: dict[str, tuple[int, list[str]]],
    codes: dict[str, list[int]],
    raw: dict[str, list[int]],
    source: str,
    at: int,
) -> Remote:
    def err(line_no: int, problem: str) -> LircdError:
        return LircdError(f"{source}:{line_no}: {problem}")

    if "name" not in params or not params["name"][1]:
        raise err(at, "remote has no 'name'")
    r = Remote(name=" ".join(params["name"][1]), source=source, codes=codes, raw_codes=raw)
    for key, (line_no, vals) in params.items():
        if key == "name":
            continue
        if key == "flags":
            flags = {f.strip().upper() for f in "".join(vals).split("|") if f.strip()}
            unknown = flags - _KNOWN_FLAGS
            if unknown:
                raise err(line_no, f"unknown flag(s) {', '.join(sorted(unknown))}")
            r.flags = frozenset(flags)
        elif key in _PAIRS:
            if len(vals) != 2:
                raise err(line_no, f"{key!r} needs 2 numbers (pulse space), got {' '.join(vals)!r}")
            try:
                pair = (_num(vals[0]), _num(vals[1]))
            except ValueError:
                raise err(line_no, f"{key!r} needs 2 numbers (pulse space), got {' '.join(vals)!r}") from None
            if min(pair) < 0:
                raise err(line_no, f"{key!r} durations must not be negative")
            attr = {"repeat": "repeat_code", "two": None, "three": None}.get(key, key)
            if attr:
                setattr(r, attr, pair)
            else:
                r.extra[key] = " ".join(vals)
        elif key == "gap":
            if not 1 <= len(vals) <= 2:
                raise err(line_no, f"'gap' needs 1 or 2 numbers, got {' '.join(vals)!r}")
            try:
                r.gap = _num(vals[0])
                r.gap2 = _num(vals[1]) if len(vals) == 2 else 0
            except ValueError:
                raise err(line_no, f"'gap' is not a number: {' '.join(vals)!r}") from None
        elif key in _INTS:
            if len(vals) != 1:
                raise err(line_no, f"{key!r} needs one number, got {' '.join(vals) or 'nothing'!r}")
            try:
                value = _num(vals[0])
            except ValueError:
                raise err(line_no, f"{key!r} is not a number: {vals[0]!r}") from None
            if value < 0:
                raise err(line_no, f"{key!r} must not be negative")
            if key == "toggle_bit":
                r.extra["toggle_bit"] = str(value)
            elif hasattr(r, key):
                setattr(r, key, value)
            else:
                r.extra[key] = str(value)
        elif key in _STRINGS:
            r.extra[key] = " ".join(vals)
        else:
            r.extra[key] = " ".join(vals)  # lircd also warns and carries on for unknown parameters
    # lircd: toggle_bit N is bit N counted from the most significant bit (1-based) of the frame.
    if "toggle_bit" in r.extra and not r.toggle_bit_mask:
        n = int(r.extra["toggle_bit"])
        if n > 0:
            if n > r.all_bits:
                raise err(params["toggle_bit"][0], f"toggle_bit {n} is beyond the {r.all_bits} bits of a frame")
            r.toggle_bit_mask = 1 << (r.all_bits - n)
    if "RC6" in r.flags and not r.rc6_mask and r.all_bits >= 5:
        r.rc6_mask = 1 << (r.all_bits - 5)  # RC-6: the trailer (toggle) bit is double width
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
    return r


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
