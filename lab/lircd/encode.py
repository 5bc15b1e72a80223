"""Encoding: a key of a :class:`~lab.lircd.remote.Remote` into pulse/space timings (µs), as lircd sends it."""

from __future__ import annotations

from collections.abc import Sequence

from lab.lircd.format import _MIN_CONST_GAP, _SUPPORTED_FLAGS, LircdError
from lab.lircd.spec import RemoteSpec


class Encoder(RemoteSpec):
    """The encoding half of :class:`~lab.lircd.remote.Remote`: keys into pulse/space timings."""

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
