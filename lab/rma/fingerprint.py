"""Fingerprints: a console log or a failed check -> a normalised title and the hashes filing keys on.

Learned from syzbot: a fault is worth filing only if it is the same fault every time it appears.
The console log is reduced to the title of its first crash report with its guilty function, in the
form syzbot made the field's convention (``KASAN: use-after-free Read in F``, ``WARNING in F``,
``possible deadlock in F``...), and with everything that changes between two hits of one bug
normalised away: timestamps, addresses, offsets, PIDs, CPU numbers, counters. The current rules
(algorithm v3) live in :mod:`lab.rma.crash`: kernel reports of every family on x86-64, ARM, ARM64,
MIPS and RISC-V, Android tombstones, Java crashes, ANRs and user-space segfaults. Besides the title, a
report carries *alternative titles* (the top frames of its call trace: ``memory stack: F < G < H``)
so two reports of one bug meet even when one is a KASAN report and the other a GPF. A report cut off
before what names its bug is *corrupted*: titled, but never sharing a fingerprint with a complete
report (nor with another corrupted one whose remaining lines read differently).

A failed check (no console crash) is fingerprinted by scenario, check kind and what it was looking
at (screen, region, channel), never by the raw score.

Each :class:`Signature` names the algorithm version that made it. Changing the rules bumps
:data:`ALGORITHM_VERSION` and registers a new function in :data:`ALGORITHMS`; hashes already stored
under an older version are never rewritten (filing still computes them to find old faults, and
``stblab rma retitle`` moves stored faults to the current titles).

Where things live: :mod:`lab.rma.signature` (Fingerprint, Signature, hashes, normalisation),
:mod:`lab.rma.fingerprint_legacy` (v1/v2 console-log rules, frozen), :mod:`lab.rma.check_titles`
(failed checks and other failures), :mod:`lab.rma.crash` (the v3 console-log rules). Every public
name is importable from here.

Example::

    >>> fp = fingerprint_log("[ 12.3] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b")
    >>> fp.title
    'kernel panic: Attempted to kill init! exitcode=0x0000000b'
    >>> fingerprint_log("[ 3.1] BUG: KASAN: use-after-free in igmp_start_timer+0xd2/0x110").title
    'KASAN: use-after-free in igmp_start_timer'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from lab.rma.check_titles import (
    CheckDescriptor,
    _fingerprint_check_v1,
    _fingerprint_check_v2,
    _fingerprint_check_v3,
    _fingerprint_other_v1,
    _fingerprint_other_v2,
    _fingerprint_other_v3,
)
from lab.rma.fingerprint_legacy import _fingerprint_log_v1, _fingerprint_log_v2
from lab.rma.signature import ALGORITHM_VERSION, Fingerprint, Signature, normalise, strip_line, title_hash

__all__ = [
    "ALGORITHMS",
    "ALGORITHM_VERSION",
    "CheckDescriptor",
    "Fingerprint",
    "Signature",
    "fingerprint",
    "fingerprint_check",
    "fingerprint_log",
    "normalise",
    "normalise_v3",
    "strip_line",
    "title_hash",
]


# --- version 3 -------------------------------------------------------------------------------
# v2 titled the last line of a crash ("Fatal exception") instead of the first report, lost the
# crashing function, knew none of the sanitizer, lockdep, hang and leak families, cut the first
# letters off ARM function names and titled no Android crash. v3 is lab.rma.crash: the first report,
# syzbot's title conventions, the guilty frame past a skip list kept as data, user-space crashes,
# and reports cut short marked corrupted. Checks and other failures are titled as in v1.


_EXITCODE = re.compile(r"(exitcode=)(0x[0-9a-fA-F]+)")


def normalise_v3(title: str) -> str:
    """:func:`normalise`, keeping what names the bug although it is a number: init's exit code.

    ``Attempted to kill init! exitcode=0x0000000b`` (killed by SIGSEGV) and ``exitcode=0x00007f00``
    (exit status 127: a missing program) are two bugs, not one. Faults filed when the code was made
    ``ADDR`` are split by ``stblab rma retitle`` (the old title is no alternative: it would merge them).
    """
    if "exitcode=" not in title:
        return normalise(title)
    kept = _EXITCODE.sub(lambda m: f"{m.group(1)}Z{m.group(2)[2:].lower()}Z", title)
    return _KEPT.sub(r"\1=0x\2", normalise(kept))


_KEPT = re.compile(r"(exitcode)=Z([0-9a-f]+)Z")


def _fingerprint_log_v3(text: str) -> Fingerprint | None:
    from lab.rma.crash import find_report

    report = find_report(text)
    if report is None:
        return None
    title = normalise_v3(report.title)
    alternatives: list[str] = []
    for alt in report.alternatives:
        alt = normalise_v3(alt)
        if alt != title and alt not in alternatives:
            alternatives.append(alt)
    evidence = "\n".join(normalise(line) for line in report.evidence)
    return Fingerprint(
        report.kind, title, tuple(alternatives), 3, report.frames, report.corrupted, report.guilty, evidence
    )


# --- registry and public entry points -----------------------------------------------------------

LogAlgorithm = Callable[[str], Fingerprint | None]
CheckAlgorithm = Callable[[CheckDescriptor], Fingerprint]
OtherAlgorithm = Callable[[str, str | None], Fingerprint]

ALGORITHMS: dict[int, tuple[LogAlgorithm, CheckAlgorithm, OtherAlgorithm]] = {
    1: (_fingerprint_log_v1, _fingerprint_check_v1, _fingerprint_other_v1),
    2: (_fingerprint_log_v2, _fingerprint_check_v2, _fingerprint_other_v2),
    3: (_fingerprint_log_v3, _fingerprint_check_v3, _fingerprint_other_v3),
}


def fingerprint_log(text: str, algorithm_version: int = ALGORITHM_VERSION) -> Fingerprint | None:
    """Title of the first crash in a console log, or None when the log shows no crash."""
    return ALGORITHMS[algorithm_version][0](text)


def fingerprint_check(
    check: CheckDescriptor | Mapping[str, Any], algorithm_version: int = ALGORITHM_VERSION
) -> Fingerprint:
    """Title of a failed check: scenario, check kind and target (never the score)."""
    return ALGORITHMS[algorithm_version][1](CheckDescriptor.coerce(check))


def fingerprint(
    *,
    console_log: str | None = None,
    check: CheckDescriptor | Mapping[str, Any] | None = None,
    test_id: str = "",
    symptom: str | None = None,
    title: str | None = None,
    algorithm_version: int = ALGORITHM_VERSION,
) -> Fingerprint:
    """The fingerprint filing uses: a crash in the console log wins (it is the root cause), then
    the failed check, then an explicit title, then the symptom and test id."""
    log_fn, check_fn, other_fn = ALGORITHMS[algorithm_version]
    if console_log:
        fp = log_fn(console_log)
        if fp is not None:
            return fp
    if check is not None:
        return check_fn(CheckDescriptor.coerce(check))
    if title and title.strip():
        # The caller chose this title: it is kept verbatim (the caller owns its stability).
        return Fingerprint("titled", title.strip(), (), algorithm_version)
    return other_fn(test_id, symptom)
