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

from lab.lircd.format import Decoded, LircdError, UnknownKeyError
from lab.lircd.parser import load_remote, load_remotes, parse_remotes, pick_remote
from lab.lircd.remote import Remote

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
