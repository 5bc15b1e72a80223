"""The lircd.conf vocabulary: errors, the flags and keys a file may use, what a decode yields."""

from __future__ import annotations

from dataclasses import dataclass

from lab.errors import StblabError


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
