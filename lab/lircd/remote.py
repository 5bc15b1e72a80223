"""One remote of a lircd.conf file: its data, encoder and decoder in one object (see :mod:`lab.lircd`)."""

from __future__ import annotations

from dataclasses import dataclass

from lab.lircd.decode import Decoder


@dataclass
class Remote(Decoder):
    """One ``begin remote`` block: timing parameters, flags and key codes.

    ``codes`` maps key name to its code(s) (several codes are sent one after the other);
    ``raw_codes`` maps key name to its raw pulse/space timings. Durations are microseconds.
    """


__all__ = ["Remote"]
