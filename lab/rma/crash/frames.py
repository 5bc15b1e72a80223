"""Call-trace frames and the guilty one.

Every architecture and kernel generation prints its stack differently; :func:`frame_of` reads one
cleaned line in any of these forms and returns the function it names:

* x86-64 / ARM64 / MIPS: ``func+0x1c/0x40 [module]``, ``[<ffffffff81234567>] func+0x1c/0x40``;
* symbolised (syzkaller, ``decode_stacktrace.sh``): ``func+0x1c/0x40 net/core/dev.c:123`` and
  inline frames ``__dump_stack lib/dump_stack.c:17 [inline]``;
* ARM: ``[<c0123456>] (func+0x1c/0x40) from [<c0123478>] (caller+0x20/0x44)`` and, since 5.x,
  ``func from caller+0x20/0x44``;
* PowerPC: ``[c000000001b1fd50] [c0000000000c3a80] func+0x1c/0x40``;
* kmemleak: ``[<00000000ab12cd34>] func+0x1c/0x40``.

:func:`pc_of` reads the faulting instruction's line (``RIP: 0010:func+0x..``, ``PC is at func+0x..``,
``pc : func+0x..``, ``EIP is at``, ``NIP [..] func``, ``epc   : 80123456 func+0x..``). An address is
only an address when it is bracketed or followed by a space: ``PC is at assign_and_init_hc+0x1c``
names ``assign_and_init_hc``, not ``ssign_and_init_hc``.

:func:`guilty` picks the first frame not in the skip list (``skip_frames_v3.txt``, data with one
comment per entry, versioned with the algorithm).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

_NAME = r"[A-Za-z_$][\w.$]*"
# +0x1c/0x40, 2.4's decimal +447/768, and +0x.../0x... where a patch's author elided the offsets
_OFF = r"(?:\+0x[0-9a-fA-F]+(?:/0x[0-9a-fA-F]+)?|\+\d+/\d+|\+0x\.\.\.(?:/0x\.\.\.)?)"
_FRAME = re.compile(
    rf"^(?:\[[<]?[0-9a-fA-F]+[>]?\]\s*){{0,2}}({_NAME}){_OFF}"  # func+0x1c/0x40, optionally after addresses
    rf"|^(?:\[<?[0-9a-fA-F]+>?\]\s*)?({_NAME}) [\w./+-]+\.(?:c|h|S|rs):\d+(?::\d+)?(?: \[inline\])?$"  # inline frame
    rf"|^\[<[0-9a-fA-F]+>\]\s*\(({_NAME})(?:{_OFF})?(?: \[[^\]]+\])?\)"  # ARM: [<c01>] (func+0x..) from ...
    rf"|^({_NAME})(?:{_OFF})?(?: \[[\w-]+\])? from {_NAME}"  # ARM since 5.x: func [mod] from caller+0x..
    rf"|^\(({_NAME})(?:{_OFF})?\) from \["  # ARM, the address column cut off: (func) from [<c01..>]
    rf"|^[\w./-]+\.[chS]:\d+ ({_NAME}){_OFF}"  # a WARNING's location and function wrapped onto their own line
    rf"|^\[?({_NAME})(?:{_OFF})?\]? \[?\[?\S+\.(?:c|h):\d+"  # decoded: func (file.c:123)
)
_PC = re.compile(
    r"^(?:PC is at|pc\s*:|RIP:\s*(?:[0-9a-fA-F]{4}:)?|IP:|EIP is at|EIP:\s*(?:[0-9a-fA-F]{4}:)?"
    r"|NIP\s*(?:\[[0-9a-fA-F]+\])?|epc\s*:\s*(?:[0-9a-fA-F]+(?=\s))?"
    r"|Krnl PSW\s*:\s*[0-9a-fA-F]+ [0-9a-fA-F]+ \()\s*"  # s390: Krnl PSW : 0704e001.. 00000000003d9042 (func+0x2a/0xd8)
    rf"(?:\[<?[0-9a-fA-F]+>?\]\s*)*\[?({_NAME})(?:{_OFF}| \([\w./-]+:\d+\))"  # f+0x1c, [f+447/768], f (file.c:12)
)
_LR = re.compile(
    rf"^(?:LR is at|lr\s*:|ra\s*:\s*[0-9a-fA-F]+(?=\s))\s*(?:\[<?[0-9a-fA-F]+>?\]\s*)*"
    rf"({_NAME})(?:{_OFF}| \([\w./-]+:\d+\))"
)
_SUFFIX = re.compile(r"\.(?:isra|constprop|part|cold|lto_priv|llvm|clone|localalias)(?:\.\d+)*|\.\d+$")


def func_name(sym: str) -> str:
    """``foo+0x1c/0x40`` or ``foo.isra.0`` -> ``foo`` (compiler clones are one function)."""
    sym = sym.split("+", 1)[0].strip()
    return _SUFFIX.sub("", sym)


def frame_of(line: str) -> str | None:
    """The function a cleaned call-trace line names, None for any other line (``? f`` frames too)."""
    entry = frame_entry(line)
    return entry[0] if entry else None


def frame_entry(line: str) -> tuple[str, bool] | None:
    """The function a cleaned call-trace line names and whether the line is an inlined frame.

    ``vcs_read_buf drivers/tty/vt/vc_screen.c:357 [inline]`` is code the compiler inlined into the
    next real frame (``vcs_read+0xaa7/0xb40``): which functions are inlined changes from build to
    build, so the real frame is the one that names the crash the same way on every build.
    """
    if line.startswith(("<IRQ>", "<EOI>", "<NMI>", "<TASK>")):
        line = line[5:].lstrip()  # old x86 traces start a frame on the marker's line
    if not line or line[0] == "?":
        return None
    m = _FRAME.match(line)
    if m is None:
        return None
    return func_name(next(g for g in m.groups() if g)), line.endswith("[inline]")


def pc_of(line: str) -> str | None:
    """The function of a faulting-PC line (x86 RIP/EIP, ARM/ARM64 PC, PowerPC NIP, MIPS epc), else None."""
    if not line:
        return None
    c = line[0]
    if c not in "PpRENeIK":
        return None
    m = _PC.match(line)
    return func_name(m.group(1)) if m else None


def lr_of(line: str) -> str | None:
    """The function of a link-register line (ARM ``LR is at``, ARM64 ``lr :``, MIPS ``ra``), else None."""
    if not line or line[0] not in "Llr":
        return None
    m = _LR.match(line)
    return func_name(m.group(1)) if m else None


SKIP_FILE = Path(__file__).with_name("skip_frames_v3.txt")


@cache
def _skip_regex(path: Path = SKIP_FILE) -> re.Pattern[str]:
    patterns = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        entry = raw.split("#", 1)[0].strip()
        if entry:
            re.compile(entry)  # a bad entry fails here, naming itself
            patterns.append(f"(?:{entry})")
    return re.compile("|".join(patterns))


def skipped(func: str) -> bool:
    """True when ``func`` is reporting machinery or a generic helper (see the skip list)."""
    return _skip_regex().fullmatch(func) is not None


def meaningful(funcs: Iterable[str | None]) -> list[str]:
    """The frames that may be guilty, in order, without repeats of the same function in a row."""
    out: list[str] = []
    for f in funcs:
        if f and not skipped(f) and (not out or out[-1] != f):
            out.append(f)
    return out


def guilty(funcs: Iterable[str | None]) -> str | None:
    """The first frame that is not reporting machinery or a generic helper, None when there is none."""
    for f in funcs:
        if f and not skipped(f):
            return f
    return None
