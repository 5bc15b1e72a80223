"""The data of one lircd.conf remote: timing parameters, flags, key codes, and what they say about it."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import numpy as np

from lab.lircd.format import _DEFAULT_AEPS, _DEFAULT_EPS, UnknownKeyError


@dataclass
class RemoteSpec:
    """The fields of a :class:`~lab.lircd.remote.Remote` and the questions they answer (no codec)."""

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
