"""Firmware versions compared as versions, not as strings or dates.

``2.10.0 > 2.9.1``, ``2.1.0-rc1 < 2.1.0``, ``R2.1.0.45 > R2.1.0.9``, ``2.1.0+b5 == 2.1.0``.

Example::

    >>> FirmwareVersion("2.10.0") > FirmwareVersion("2.9.1")
    True
"""

from __future__ import annotations

import functools
import re

_PRE = {"dev": -4, "alpha": -3, "a": -3, "beta": -2, "b": -2, "rc": -1, "pre": -1}
_TOKEN = re.compile(r"\d+|[A-Za-z]+")


@functools.total_ordering
class FirmwareVersion:
    """A version string with a total order: numeric runs compare as numbers, and a trailing
    pre-release word (``dev``, ``alpha``, ``beta``, ``rc``) sorts before the release."""

    __slots__ = ("text", "_key")

    def __init__(self, text: str) -> None:
        text = str(text).strip()
        if not text or not _TOKEN.search(text):
            raise ValueError(f"not a firmware version: {text!r}")
        self.text = text
        self._key = self._make_key(text)

    @staticmethod
    def _make_key(text: str) -> tuple[tuple[int, int | str], ...]:
        body = text[1:] if text[:1] in "vVrR" and text[1:2].isdigit() else text
        # Build metadata after '+' does not order versions (as in SemVer): 2.1.0+b5 is 2.1.0.
        body = body.split("+", 1)[0] or body
        key: list[tuple[int, int | str]] = []
        for tok in _TOKEN.findall(body):
            if tok.isdigit():
                key.append((1, int(tok)))
            else:
                low = tok.lower()
                key.append((0, _PRE[low]) if low in _PRE else (0, 0))
                if low not in _PRE:
                    key.append((0, low))
        # A release has an implicit (0, 0) after its numbers so that 2.1.0 > 2.1.0-rc1.
        key.append((0, 0))
        return tuple(key)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            other = FirmwareVersion(other)
        return isinstance(other, FirmwareVersion) and self._key == other._key

    def __lt__(self, other: FirmwareVersion | str) -> bool:
        if isinstance(other, str):
            other = FirmwareVersion(other)
        return _cmp_key(self._key) < _cmp_key(other._key)

    def __hash__(self) -> int:
        return hash(self._key)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"FirmwareVersion({self.text!r})"


def _cmp_key(key: tuple[tuple[int, int | str], ...]) -> tuple[tuple[int, int, str], ...]:
    # Make mixed int/str parts comparable: (kind, number, word).
    out = []
    for kind, val in key:
        if isinstance(val, int):
            out.append((kind, val, ""))
        else:
            out.append((kind, 0, val))
    return tuple(out)


def version_key(text: str) -> str:
    """A string that sorts like the version (for ORDER BY in a database column).

    Numbers are zero-padded to 10 digits; pre-release words map below the release marker.
    """
    parts = []
    for kind, num, word in _cmp_key(FirmwareVersion(text)._key):
        parts.append(f"{kind}{num + 5:010d}{word}")
    return ".".join(parts)


__all__ = ["FirmwareVersion", "version_key"]
