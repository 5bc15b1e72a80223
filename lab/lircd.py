"""lircd.conf: read IR remote definitions, encode keys into pulse/space timings, decode timings.

A format, not a driver: the IR driver (:mod:`lab.drivers.ir`) encodes with it before it drives a
blaster, and the emulated box's IR receiver decodes with it. The reader follows lircd.conf(5) as
``irrecord`` writes it: several ``begin remote`` blocks per file, space-encoded remotes (header,
one, zero, ptrail, plead, foot, repeat, pre_data/post_data, toggle bits, gap, repeat_gap,
min_repeat), bi-phase remotes (flags RC5/SHIFT_ENC and RC6 with rc6_mask), ``CONST_LENGTH``,
``NO_HEAD_REP``, ``NO_FOOT_REP``, ``REPEAT_HEADER``, ``REVERSE``, ``SPACE_FIRST`` and
``raw_codes`` sections. The bit order and bi-phase conventions are lircd's, so a code written in
a file sends what lircd itself would send.

Timings are alternating pulse/space durations in microseconds, starting with a pulse and ending
with a pulse (the silence after the last pulse is not part of the signal; ask ``trailing_gap=True``
to get it as a final space, as an iTach ``sendir`` wants).

Example::

    from lab.lircd import load_remote
    rc = load_remote("rigs/remotes/stblab-rc1.lircd.conf")
    timings = rc.encode("KEY_OK", repeat=2)      # full frame, gap, two NEC repeat frames
    assert rc.decode(timings) == "KEY_OK"
    rc.decode([9000, 4500, 560])                  # None: garbage is not a key

A malformed file raises :class:`LircdError` naming the file, the line and the problem::

    remotes/bad.conf:7: 'one' needs 2 numbers (pulse space), got 'x12'
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lab.errors import StblabError

__all__ = [
    "Decoded",
    "LircdError",
    "Remote",
    "UnknownKeyError",
    "load_remote",
    "load_remotes",
    "parse_remotes",
    "pick_remote",
]


class LircdError(StblabError, ValueError):
    """A lircd.conf file is malformed, or a remote cannot do what was asked."""


class UnknownKeyError(LircdError, KeyError):
    """A key name the remote does not define. ``close`` lists the nearest names it does define."""

    def __init__(self, remote: str, key: str, close: list[str]) -> None:
        self.remote = remote
        self.key = key
        self.close = close
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        super().__init__(f"remote {remote!r} has no key {key!r}{hint}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


# Flags lircd knows; the ones this module can encode are in _SUPPORTED_FLAGS.
_KNOWN_FLAGS = {
    "RAW_CODES",
    "RC5",
    "SHIFT_ENC",
    "RC6",
    "RCMM",
    "SPACE_ENC",
    "SPACE_FIRST",
    "GOLDSTAR",
    "GRUNDIG",
    "BO",
    "SERIAL",
    "XMP",
    "REVERSE",
    "NO_HEAD_REP",
    "NO_FOOT_REP",
    "CONST_LENGTH",
    "REPEAT_HEADER",
}
_SUPPORTED_FLAGS = {
    "RAW_CODES",
    "RC5",
    "SHIFT_ENC",
    "RC6",
    "SPACE_ENC",
    "SPACE_FIRST",
    "REVERSE",
    "NO_HEAD_REP",
    "NO_FOOT_REP",
    "CONST_LENGTH",
    "REPEAT_HEADER",
}
_PAIRS = {"header", "one", "zero", "two", "three", "foot", "repeat", "pre", "post"}
_INTS = {
    "bits",
    "eps",
    "aeps",
    "plead",
    "ptrail",
    "pre_data_bits",
    "post_data_bits",
    "pre_data",
    "post_data",
    "toggle_bit",
    "toggle_bit_mask",
    "toggle_mask",
    "rc6_mask",
    "ignore_mask",
    "repeat_mask",
    "repeat_gap",
    "min_repeat",
    "min_code_repeat",
    "frequency",
    "duty_cycle",
    "suppress_repeat",
    "baud",
    "serial_mode",
    "manual_sort",
}
_STRINGS = {"name", "driver", "flags"}
_DEFAULT_EPS = 30
_DEFAULT_AEPS = 100
_MIN_CONST_GAP = 5000


@dataclass(frozen=True)
class Decoded:
    """What a receiver made of one key press: the key, the toggle bit seen and the repeat frames.

    ``key`` is None for a lone repeat frame (an NEC "key still held" burst) with no earlier key.
    """

    key: str | None
    repeats: int = 0
    toggle: int | None = None

    @property
    def repeat_only(self) -> bool:
        return self.key is None


@dataclass
class Remote:
    """One ``begin remote`` block: timing parameters, flags and key codes.

    ``codes`` maps key name to its code(s) (several codes are sent one after the other);
    ``raw_codes`` maps key name to its raw pulse/space timings. Durations are microseconds.
    """

    name: str
    bits: int = 0
    flags: frozenset[str] = frozenset()
    eps: int = _DEFAULT_EPS
    aeps: int = _DEFAULT_AEPS
    header: tuple[int, int] = (0, 0)
    one: tuple[int, int] = (0, 0)
    zero: tuple[int, int] = (0, 0)
    foot: tuple[int, int] = (0, 0)
    repeat_code: tuple[int, int] = (0, 0)
    pre: tuple[int, int] = (0, 0)
    post: tuple[int, int] = (0, 0)
    plead: int = 0
    ptrail: int = 0
    pre_data_bits: int = 0
    pre_data: int = 0
    post_data_bits: int = 0
    post_data: int = 0
    gap: int = 0
    gap2: int = 0
    repeat_gap: int = 0
    min_repeat: int = 0
    toggle_bit_mask: int = 0
    toggle_mask: int = 0
    rc6_mask: int = 0
    frequency: int = 38000
    duty_cycle: int = 50
    codes: dict[str, list[int]] = field(default_factory=dict)
    raw_codes: dict[str, list[int]] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    source: str = ""
    _templates: dict[int, list[tuple[str, int | None, tuple[int, ...]]]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _repeat_templates: dict[str, tuple[int, ...]] | None = field(default=None, init=False, repr=False, compare=False)
    _split: int = field(default=0, init=False, repr=False, compare=False)
    _arrays: dict[int, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    # ----------------------------------------------------------------- describing the remote

    @property
    def keys(self) -> list[str]:
        """Key names in file order (coded keys first, then raw ones)."""
        return list(self.codes) + [k for k in self.raw_codes if k not in self.codes]

    @property
    def all_bits(self) -> int:
        """Bits in one frame: pre_data + code + post_data."""
        return self.pre_data_bits + self.bits + self.post_data_bits

    @property
    def is_raw(self) -> bool:
        return "RAW_CODES" in self.flags or (not self.codes and bool(self.raw_codes))

    @property
    def is_biphase(self) -> bool:
        return bool(self.flags & {"RC5", "SHIFT_ENC", "RC6"})

    @property
    def has_repeat_code(self) -> bool:
        return self.repeat_code[0] > 0 or self.repeat_code[1] > 0

    def __contains__(self, key: object) -> bool:
        return key in self.codes or key in self.raw_codes

    def close_keys(self, key: str, n: int = 5) -> list[str]:
        """Key names that look like ``key`` (for "did you mean" messages)."""
        names = self.keys
        close = difflib.get_close_matches(key, names, n=n, cutoff=0.5)
        upper = key.upper()
        for name in names:
            if len(close) >= n:
                break
            if name not in close and (upper in name.upper() or name.upper() in ("KEY_" + upper)):
                close.append(name)
        return close

    def check_key(self, key: str) -> None:
        """Raise :class:`UnknownKeyError` (with close names) unless the remote defines ``key``."""
        if key not in self:
            raise UnknownKeyError(self.name, key, self.close_keys(key))

    # ----------------------------------------------------------------- encoding

    def encode(
        self, key: str, *, repeat: int = 0, toggle: int | bool | None = None, trailing_gap: bool = False
    ) -> list[int]:
        """Pulse/space timings (µs) for one press of ``key`` followed by ``repeat`` repeat frames.

        The remote's ``min_repeat`` is honoured (at least that many repeats). ``toggle`` sets the
        toggle bit(s) of ``toggle_bit_mask`` (RC-5/RC-6 style: a new press flips it); None sends
        the code as written in the file. Frames are separated by the remote's gap (``repeat_gap``
        between repeats when set; with ``CONST_LENGTH`` the gap counts from the start of a frame).

        >>> rc.encode("KEY_OK")[:4]       # NEC: header 9000/4500, then the first data bit
        [9000, 4500, 560, 560]
        """
        frames, gaps = self._frames(key, repeat=repeat, toggle=toggle)
        out: list[int] = []
        for i, frame in enumerate(frames):
            _append_all(out, frame)
            if i < len(frames) - 1 or trailing_gap:
                _append(out, gaps[i], pulse=False)
        return out

    def frames(
        self, key: str, *, repeat: int = 0, toggle: int | bool | None = None
    ) -> tuple[list[list[int]], list[int]]:
        """The frames of one press (full frame, then repeat frames) and the gap after each (µs).

        What :meth:`encode` joins into one list; blasters that replay a repeat frame themselves
        (an iTach ``sendir`` with an offset) need them apart.
        """
        return self._frames(key, repeat=repeat, toggle=toggle)

    def frame_gap(self) -> int:
        """Silence (µs) to leave after a single frame before the next press starts."""
        frame = self._frame_for(self.keys[0], toggle=None, repeat=False) if self.keys else []
        return self._gap_after(frame, to_repeat=False)

    def _frames(self, key: str, *, repeat: int, toggle: int | bool | None) -> tuple[list[list[int]], list[int]]:
        self.check_key(key)
        if repeat < 0:
            raise LircdError(f"repeat must be >= 0, got {repeat}")
        unsupported = self.flags - _SUPPORTED_FLAGS
        if unsupported and key not in self.raw_codes:
            raise LircdError(
                f"{self.source or 'remote'}: remote {self.name!r}: encoding flag(s) {', '.join(sorted(unsupported))} "
                "not supported (use raw_codes for this remote)"
            )
        count = max(repeat, self.min_repeat)
        frames = [self._frame_for(key, toggle=toggle, repeat=False)]
        for _ in range(count):
            frames.append(self._frame_for(key, toggle=toggle, repeat=True))
        gaps = [self._gap_after(frames[i], to_repeat=True) for i in range(len(frames) - 1)]
        gaps.append(self._gap_after(frames[-1], to_repeat=False))
        return frames, gaps

    def _gap_after(self, frame: Sequence[int], *, to_repeat: bool) -> int:
        base = self.repeat_gap if (to_repeat and self.repeat_gap) else self.gap
        if not base:
            base = 100_000 if self.is_raw else 40_000
        if "CONST_LENGTH" in self.flags:
            return max(base - sum(frame), min(base, _MIN_CONST_GAP))
        return base

    def _frame_for(self, key: str, *, toggle: int | bool | None, repeat: bool) -> list[int]:
        if key in self.raw_codes and (key not in self.codes):
            return _strip(list(self.raw_codes[key]))  # a trailing space is silence: the gap follows
        out: list[int] = []
        if repeat and self.has_repeat_code:
            if "REPEAT_HEADER" in self.flags and self.header != (0, 0):
                _append_pair(out, self.header)
            if self.plead:
                _append(out, self.plead, pulse=True)
            _append_pair(out, self.repeat_code)
            if self.ptrail:
                _append(out, self.ptrail, pulse=True)
            return _strip(out)
        for code in self.codes[key]:
            part = self._code_frame(code, toggle=toggle, repeat=repeat)
            if out:  # several codes for one key: lircd sends them back to back, gap between
                _append(out, self._gap_after(out, to_repeat=False), pulse=False)
            _append_all(out, part)
        return _strip(out)

    def _code_frame(self, code: int, *, toggle: int | bool | None, repeat: bool) -> list[int]:
        out: list[int] = []
        if self.header != (0, 0) and not (repeat and "NO_HEAD_REP" in self.flags):
            _append_pair(out, self.header)
        if self.plead:
            _append(out, self.plead, pulse=True)
        value = self._full_value(code, toggle)
        post_bits, bits = self.post_data_bits, self.bits
        pre_value = value >> (bits + post_bits)
        code_value = (value >> post_bits) & ((1 << bits) - 1)
        post_value = value & ((1 << post_bits) - 1)
        done = 0
        if self.pre_data_bits:
            self._send_bits(out, pre_value, self.pre_data_bits, done)
            done += self.pre_data_bits
            if self.pre != (0, 0):
                _append_pair(out, self.pre)
        self._send_bits(out, code_value, bits, done)
        done += bits
        if self.post_data_bits:
            if self.post != (0, 0):
                _append_pair(out, self.post)
            self._send_bits(out, post_value, self.post_data_bits, done)
        if self.ptrail:
            _append(out, self.ptrail, pulse=True)
        if self.foot != (0, 0) and not (repeat and "NO_FOOT_REP" in self.flags):
            _append_pair(out, self.foot)
        return out

    def _full_value(self, code: int, toggle: int | bool | None) -> int:
        value = (self.pre_data << (self.bits + self.post_data_bits)) | (code << self.post_data_bits)
        value |= self.post_data
        value &= (1 << self.all_bits) - 1 if self.all_bits else 0
        if toggle is None:
            return value
        on = bool(toggle)
        mask = self.toggle_bit_mask
        if mask:
            if bin(mask).count("1") == 1:  # a single toggle bit: set it to the toggle state
                value = (value | mask) if on else (value & ~mask)
            elif on:
                value ^= mask
        if self.toggle_mask and on:
            value ^= self.toggle_mask
        return value

    def _send_bits(self, out: list[int], value: int, nbits: int, done: int) -> None:
        """Append ``nbits`` of ``value`` (MSB first, LSB first with REVERSE) the way lircd sends them."""
        order = range(nbits) if "REVERSE" in self.flags else range(nbits - 1, -1, -1)
        for index, shift in enumerate(order):
            bit = (value >> shift) & 1
            overall = 1 << (self.all_bits - 1 - done - index)
            wide = 2 if (self.rc6_mask & overall) else 1
            if bit:
                p, s = self.one
                if self.is_biphase or "SPACE_FIRST" in self.flags:
                    _append(out, s * wide, pulse=False)
                    _append(out, p * wide, pulse=True)
                else:
                    _append(out, p, pulse=True)
                    _append(out, s, pulse=False)
            else:
                p, s = self.zero
                _append(out, p * wide, pulse=True)
                _append(out, s * wide, pulse=False)

    # ----------------------------------------------------------------- decoding

    def decode(self, timings: Iterable[int | float]) -> str | None:
        """The key these pulse/space timings carry, or None when they are not a code of this remote.

        Tolerance per duration is the remote's ``eps`` (percent) or ``aeps`` (µs), whichever is
        larger. Repeat frames after the first frame are accepted; a lone repeat frame gives None.
        """
        found = self.decode_all(timings)
        return found[0].key if found and found[0].key else None

    def decode_press(self, timings: Iterable[int | float], previous: str | None = None) -> Decoded | None:
        """Like :meth:`decode` but tells the repeat count and toggle; None for garbage.

        A burst of repeat frames alone is attributed to ``previous`` (the key still held) when given.
        """
        found = self.decode_all(timings, previous=previous)
        return found[0] if found else None

    def decode_all(self, timings: Iterable[int | float], previous: str | None = None) -> list[Decoded]:
        """Every key press in ``timings``: a full frame starts a press, repeat frames extend it.

        Frames that match nothing end the current press and are skipped (noise), as a receiver does.
        """
        values = _clean(timings)
        if values is None:
            return []
        self._build_templates()
        result: list[Decoded] = []
        current: str | None = previous
        cur_toggle: int | None = None
        repeats = 0
        started = False
        for frame in self._split_frames(values):
            hit = self._match_full(frame)
            if hit is not None:
                if started:
                    result.append(Decoded(current, repeats, cur_toggle))
                current, cur_toggle = hit
                repeats, started = 0, True
                # A full frame repeated while held (no separate repeat code): count it as a repeat.
                continue
            if self._match_repeat(frame, current):
                if not started:
                    started, repeats, cur_toggle = True, 0, None
                repeats += 1
                continue
            if started:
                result.append(Decoded(current, repeats, cur_toggle))
            started, current = False, None
        if started:
            result.append(Decoded(current, repeats, cur_toggle))
        return _merge_held(result, self.has_repeat_code)

    def _build_templates(self) -> None:
        if self._templates is not None:
            return
        templates: dict[int, list[tuple[str, int | None, tuple[int, ...]]]] = {}
        repeats: dict[str, tuple[int, ...]] = {}
        max_inner = 0
        for key in self.keys:
            try:
                variants: set[tuple[int | None, tuple[int, ...]]] = set()
                toggles: tuple[int | None, ...] = (0, 1) if (self.toggle_bit_mask or self.toggle_mask) else (None,)
                for t in toggles:
                    variants.add((t, tuple(self._frame_for(key, toggle=t, repeat=False))))
                rep = tuple(self._frame_for(key, toggle=None, repeat=True))
            except LircdError:
                continue
            seen: set[tuple[int, ...]] = set()
            for t, tpl in sorted(variants, key=lambda v: (v[0] is None, v[0] or 0)):
                if tpl in seen:
                    continue
                seen.add(tpl)
                templates.setdefault(len(tpl), []).append((key, t, tpl))
                max_inner = max(max_inner, max(tpl[1::2], default=0))
            repeats[key] = rep
            max_inner = max(max_inner, max(rep[1::2], default=0))
        self._templates = templates
        self._repeat_templates = repeats
        self._split = int(max_inner * (1 + self.eps / 100) + self.aeps)
        # the same templates as arrays per frame length, for one vectorised comparison per frame
        self._arrays = {}
        for length, items in templates.items():
            want = np.array([tpl for _, _, tpl in items], dtype=np.float64)
            allowed = np.maximum(np.maximum(want * (self.eps / 100), self.aeps), 1.0)
            self._arrays[length] = (want, allowed)

    def _split_frames(self, values: list[int]) -> list[list[int]]:
        frames: list[list[int]] = []
        cur: list[int] = []
        for i, v in enumerate(values):
            if i % 2 == 1 and v > self._split:
                frames.append(cur)
                cur = []
            else:
                cur.append(v)
        if cur:
            frames.append(cur)
        return [f for f in frames if f]

    def _close(self, got: Sequence[int], want: Sequence[int]) -> bool:
        if len(got) != len(want):
            return False
        eps, aeps = self.eps / 100, self.aeps
        return all(abs(g - w) <= max(w * eps, aeps) for g, w in zip(got, want, strict=True))

    def _match_full(self, frame: list[int]) -> tuple[str, int | None] | None:
        """The key (and toggle) whose frame is nearest to ``frame`` within tolerance, or None."""
        assert self._templates is not None
        arrays = self._arrays.get(len(frame))
        if arrays is None:
            return None
        want, allowed = arrays
        dev = np.abs(want - np.asarray(frame, dtype=np.float64)) / allowed
        ok = (dev <= 1.0).all(axis=1)
        if not ok.any():
            return None
        score = np.where(ok, dev.sum(axis=1), np.inf)
        key, toggle, _ = self._templates[len(frame)][int(np.argmin(score))]
        return key, toggle

    def _match_repeat(self, frame: list[int], current: str | None) -> bool:
        assert self._repeat_templates is not None
        if current is not None and current in self._repeat_templates:
            return self._close(frame, self._repeat_templates[current])
        if self.has_repeat_code and self._repeat_templates:
            return self._close(frame, next(iter(self._repeat_templates.values())))
        return False


# --------------------------------------------------------------------- timing helpers


def _append(out: list[int], value: int, *, pulse: bool) -> None:
    """Append a pulse or space, merging with the previous one of the same kind (lircd does too)."""
    if value <= 0:
        return
    if not out:
        if pulse:
            out.append(value)
        return  # a signal never starts with a space
    last_is_pulse = len(out) % 2 == 1
    if last_is_pulse == pulse:
        out[-1] += value
    else:
        out.append(value)


def _append_pair(out: list[int], pair: tuple[int, int]) -> None:
    _append(out, pair[0], pulse=True)
    _append(out, pair[1], pulse=False)


def _append_all(out: list[int], timings: Sequence[int]) -> None:
    for i, v in enumerate(timings):
        _append(out, v, pulse=i % 2 == 0)


def _strip(out: list[int]) -> list[int]:
    if len(out) % 2 == 0 and out:
        out.pop()
    return out


def _clean(timings: Iterable[int | float]) -> list[int] | None:
    try:
        values = [int(round(float(v))) for v in timings]
    except (TypeError, ValueError, OverflowError):
        return None
    if not values or any(v <= 0 for v in values):
        return None
    if len(values) % 2 == 0:
        values.pop()  # the trailing gap is silence, not part of a frame
    return values


def _merge_held(found: list[Decoded], has_repeat_code: bool) -> list[Decoded]:
    """Without a repeat code a held key re-sends its full frame; fold those into one press."""
    if has_repeat_code:
        return found
    merged: list[Decoded] = []
    for d in found:
        if (
            merged
            and d.key is not None
            and merged[-1].key == d.key
            and (d.toggle is None or d.toggle == merged[-1].toggle)
        ):
            prev = merged[-1]
            merged[-1] = Decoded(prev.key, prev.repeats + 1 + d.repeats, prev.toggle)
        else:
            merged.append(d)
    return merged


# --------------------------------------------------------------------- parsing


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
