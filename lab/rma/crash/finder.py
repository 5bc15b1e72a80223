"""Find the first crash report in a console log and title it.

The first report names the bug; what it causes afterwards (the panic line, the reboot, a second
oops, the watchdog reset) does not. A report whose header only says that an earlier crash happened
(``Kernel panic - not syncing: Fatal exception``, a bare watchdog reset, ``invoked oom-killer``) names
the bug only when nothing more specific is in the log, and then as a *corrupted* report.

Speed: a log is never split into lines as a whole. One regular-expression pass
(:mod:`~lab.rma.crash.gate`) picks the lines whose message starts the way a header does, and a few
``str.find`` look for the words of the rules that match anywhere in a line; only those lines are
checked for a trigger word, cleaned and classified, and a report's own lines (at most
:data:`REPORT_LINES`) are cleaned when it is found. Colour codes are removed from the whole log
first; a log with a stray escape character is read the slower way, every line holding a trigger
word (:data:`TRIGGERS`). About a millisecond per 100 KB log, whatever
it holds (benchmarks/fingerprint.md).

When the header carries a printk caller (``[  T123]``, ``[    C1]``), the report's lines are the
ones of that caller (and lines without one): another task's lines printed in between are ignored.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from dataclasses import replace
from itertools import chain

from lab.rma.crash import gate, kernel, userspace
from lab.rma.crash.frames import frame_entry, func_name, guilty, lr_of, meaningful, pc_of, skipped
from lab.rma.crash.lines import clean
from lab.rma.crash.report import CrashReport, Header

REPORT_LINES = 400
# Case-sensitive words of which every header line holds at least one.
TRIGGERS = (
    "BUG",
    "WARNING",
    "nable to handle",
    "rotection fault",
    "Internal error",
    "INFO:",
    "UBSAN",
    "Kernel panic",
    "egfault",
    "nhandled",
    ", esr 0x",
    " abort\n",  # U-Boot's ARM vectors: "data abort", "prefetch abort" alone on their line
    "sending SIG",
    "ANR ",
    "refcount_t:",
    "ODEBUG:",
    "unreferenced object",
    "LOCKUP",
    "atchdog",
    "WDT reset",
    "ut of memory",
    "oom-killer",
    "Fatal signal",
    "*** ***",
    "FATAL EXCEPTION",
    "Exception in thread",
    "invalid opcode",
    "divide error",
    "stack segment",
    "double fault",
    "Oops",
    "traps:",
    " <<<",
    "Exception",  # from here on: Java (see _JAVA_TRIGGERS)
    "Error:",
)
_JAVA_TRIGGERS = TRIGGERS.index("Exception")
_END = re.compile(
    r"^(?:Code: |---\[ end|Kernel panic|Allocated by task|Freed by task|The buggy address|Memory state around"
    r"|Last potentially related|Second to last|-> #\d|other info that might help|Showing all locks|NMI backtrace for"
    r"|Sending NMI|Rebooting|={10}|irq event stamp|hardirqs last|Modules linked in|Uninit was|Local variable"
    r"|CPU: \d+ PID|Call [Tt]race:|Hardware name|BUG: |WARNING: |INFO: |Mem abort info|Exception stack|Stack: \(0x"
    r"|read to 0x|write to 0x|read-write to 0x|Reported by Kernel Concurrency|value changed:|unreferenced object)"
)
_HANDLED = re.compile(r"System\.err|(?:^|\s)W[/ ]")
_ACCESS = re.compile(r"^(Read|Write) of size \d+")
_MAX_GAP = 40
# The end of a report printed before a panic line: its end marker, its register dump or code bytes.
_AFTER_REPORT = re.compile(r"---\[ end trace|(?:^|\n)[^\n]*?\b(?:Code: |CR2: |EIP: |RIP: |NIP |pc : |PC is at |epc )")
_EPC_IN = re.compile(r"^epc\s*=\s*\S+ in ([^\[\s]+)\[")


def _classify(line: str) -> Header | None:
    return kernel.classify(line) or userspace.classify(line)


_QP_SOFT = re.compile(r"(?<!=)=\r?\n")
_QP_ESCAPE = re.compile("=(?:3D|20|C2=A0|A0|09)")  # =3D, =20, =C2=A0, =A0, =09: one scan for all


def _soft_breaks(text: str, most: int = 2) -> int:
    """How many line ends after a single ``=`` the text has (up to ``most``): quoted-printable soft breaks.

    A break that ends a line at the encoder's 76th column counts for ``most``: it is the encoding.
    """
    found = 0
    pos = text.find("=\n")
    while pos >= 0 and found < most:
        if text[pos - 1 : pos] != "=":  # "==" ends base64 padding, not a soft break
            found += 1
            if pos - text.rfind("\n", 0, pos) == 76:  # a line cut at the encoder's 76 columns
                return most
        pos = text.find("=\n", pos + 2)
    return found


def unwrap_quoted_printable(text: str) -> str:
    """A log pasted from a quoted-printable mail with its soft line breaks joined and ``=3D`` decoded.

    Mail archives keep the transfer encoding: ``RIP: 0010:ano=`` / ``n_vma_interval_tree_verify+0x..``
    is one line, ``=3D`` is ``=`` and ``=C2=A0`` a space. Only a text that shows the encoding (two
    soft breaks, or an escape) is touched: a console line never ends with a single ``=``.
    """
    if "=" not in text or "=\n" not in text:  # (memchr, then one scan: a mail saved with CRLF is left as it is)
        return text
    if _soft_breaks(text) < 2 and not _QP_ESCAPE.search(text):
        return text
    text = _QP_SOFT.sub("", text)
    for code, char in (("=C2=A0", " "), ("=A0", " "), ("=20", " "), ("=09", "\t"), ("=3D", "=")):
        text = text.replace(code, char)
    return text


# Terminal escapes as lines.clean() removes them, never across a line end (so lines stay lines).
_ANSI_CODES = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b\n]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


class _Log:
    """A console log read lazily: line boundaries and cleaned lines on demand."""

    def __init__(self, text: str) -> None:
        if "\n" not in text and "\r" in text:
            text = text.replace("\r", "\n")
        text = unwrap_quoted_printable(text)
        if "\x1b" in text:  # colour codes (systemd's "[  OK  ]"): clean() would drop them line by line
            text = _ANSI_CODES.sub("", text)
        self.text = text

    def line_at(self, pos: int) -> tuple[int, int]:
        start = self.text.rfind("\n", 0, pos) + 1
        end = self.text.find("\n", pos)
        return start, len(self.text) if end < 0 else end

    def following(self, end: int, caller: str | None) -> _Lines:
        """The cleaned lines after offset ``end`` (a line end), of ``caller`` where given."""
        return _Lines(self.text, end + 1, caller)


class _Lines:
    """Up to :data:`REPORT_LINES` cleaned lines of one report, cleaned only as far as they are read."""

    def __init__(self, text: str, pos: int, caller: str | None) -> None:
        self._raw = text[pos : pos + REPORT_LINES * 300].split("\n", REPORT_LINES)[:REPORT_LINES]
        self._next = 0
        self._caller = caller
        self._lines: list[str] = []

    def _fill(self, n: int) -> bool:
        while len(self._lines) < n and self._next < len(self._raw):
            line, who = clean(self._raw[self._next])
            self._next += 1
            if self._caller is None or who is None or who == self._caller:
                self._lines.append(line)
        return len(self._lines) >= n

    def __iter__(self) -> Iterator[str]:
        i = 0
        while self._fill(i + 1):
            yield self._lines[i]
            i += 1

    def head(self, n: int) -> list[str]:
        """The first ``n`` lines (fewer when the report is shorter)."""
        self._fill(n)
        return self._lines[:n]


def _headers(log: _Log) -> Iterator[tuple[int, int, Header, str, str | None]]:
    """(start, end, header, cleaned line, printk caller) of every header line, in log order.

    Only the lines :mod:`~lab.rma.crash.gate` lets through are read, and of those only the ones
    holding a trigger word (the rule before the gate, kept exactly).
    """
    text = log.text
    if "\x1b" in text:  # colour codes may hide a prefix from the gate: look at every trigger word
        yield from _headers_by_trigger(log)
        return
    for start in gate.line_starts(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        first = _first_trigger(text, start, end)
        if first is None:
            continue
        header = _header_at(text, start, end, first)
        if header is not None:
            yield (start, end, *header)


def _first_trigger(text: str, start: int, end: int) -> int | None:
    """Index in :data:`TRIGGERS` of the first trigger word of the line ``text[start:end]``, None if none."""
    best: tuple[int, int] | None = None
    stop = min(end + 1, len(text))  # " abort\n" ends with the line's newline
    for i, word in enumerate(TRIGGERS):
        pos = text.find(word, start, stop)
        if pos >= 0 and (best is None or pos < best[0]):
            best = (pos, i)
    return None if best is None else best[1]


def _header_at(text: str, start: int, end: int, trigger: int) -> tuple[Header, str, str | None] | None:
    """The header the line starts (with its cleaned text and printk caller), None when it starts none."""
    raw = text[start:end]
    if trigger >= _JAVA_TRIGGERS and _HANDLED.search(raw):
        return None  # System.err / a warning: an exception the app caught and printed, not a crash
    line, caller = clean(raw)
    header = _classify(line)
    return None if header is None else (header, line, caller)


def _headers_by_trigger(log: _Log) -> Iterator[tuple[int, int, Header, str, str | None]]:
    """:func:`_headers` the slow way: every line holding a trigger word is cleaned and classified."""
    text = log.text
    heap = [(pos, i) for i, word in enumerate(TRIGGERS) if (pos := text.find(word)) >= 0]
    heapq.heapify(heap)
    done_until = -1
    while heap:
        pos, i = heap[0]
        if pos <= done_until:  # another trigger word of a line already read
            nxt = text.find(TRIGGERS[i], done_until)
            if nxt >= 0:
                heapq.heapreplace(heap, (nxt, i))
            else:
                heapq.heappop(heap)
            continue
        start, end = log.line_at(pos)
        nxt = text.find(TRIGGERS[i], end)
        if nxt >= 0:
            heapq.heapreplace(heap, (nxt, i))
        else:
            heapq.heappop(heap)
        done_until = end
        header = _header_at(text, start, end, i)
        if header is not None:
            yield (start, end, *header)


def find_report(text: str) -> CrashReport | None:
    """The first crash report of ``text`` (a console log, logcat or tombstone), None when there is none."""
    log = _Log(text)
    fallback: CrashReport | None = None
    for start, end, header, line, caller in _headers(log):
        lines = log.following(end, caller)
        report = _titled(header, line, lines, log.text.count("\n", 0, start))
        if header.kind == "panic" and not report.corrupted:
            before = log.text[max(0, start - 4000) : start].split("\n")[-_EVIDENCE_LINES - 1 : -1]
            if _AFTER_REPORT.search("\n".join(before)):
                # The panic ends a report whose header the log lost (it starts after it): the panic's reason
                # (init killed by SIGSEGV) is what is left of an unknown crash, and the end of that report
                # (its last frames, its registers) tells two such crashes apart.
                tail = tuple(clean(x)[0] for x in before)
                report = replace(report, corrupted=True, evidence=(line, *tail))
        if not header.generic:
            return report
        fallback = fallback or report
    return fallback


def _walk(lines: _Lines, after: str | None, use_pc: bool) -> tuple[list[str], list[str], str | None, str | None, bool]:
    """Frames of the first call trace (after a line starting with ``after``), faulting PC and LR.

    The first list has inlined frames folded into the real frame after them (the one that names the
    crash the same way on every build), the second keeps every frame as printed. A PC line inside
    the trace (the interrupted code of an RCU stall or lockup) is a frame there. The last value says
    whether ``after`` was found.
    """
    frames: list[str] = []
    printed: list[str] = []
    inlined: list[str] = []  # inlined frames waiting for the real frame they are part of
    pc = lr = None
    waiting = after
    gap = 0
    for line in lines:
        if waiting is not None:
            if line.startswith(waiting):
                waiting = None
            continue
        entry = frame_entry(line)
        if entry is not None:
            f, inline = entry
            printed.append(f)
            if inline:
                inlined.append(f)
            else:
                frames.append(f)
                inlined.clear()
            gap = 0
            continue
        if printed:
            p = pc_of(line) if use_pc else None
            if p is not None:  # the interrupted code of a stall, or a PC printed after interleaved frames
                pc = pc or p
                frames.append(p)
                printed.append(p)
                continue
            gap += 1
            if gap > _MAX_GAP or _END.match(line):
                break
        elif use_pc:
            pc = pc or pc_of(line)
            lr = lr or lr_of(line)
            if line.startswith(_STOP):
                break
    frames.extend(inlined)  # the trace was cut inside an inlined group: its inlined frames are all there is
    return frames, printed, pc, lr, waiting is None


_STOP = ("Kernel panic", "---[ end", "BUG: ", "WARNING: ", "Rebooting", "INFO: ")


def _stack(lines: _Lines, header: Header) -> tuple[list[str], list[str], str | None, str | None]:
    frames, printed, pc, lr, found = _walk(lines, header.stack_after, header.use_pc)
    if not found:  # cut before the marker: take what stack there is (and the PC, if any was printed)
        frames, printed, pc, lr, _ = _walk(lines, None, True)
    if header.use_pc and pc is None:
        # Another task's lines ended the walk before the PC line (an interleaved console): look further.
        pc = next((p for line in lines.head(_PC_LINES) if (p := pc_of(line))), None)
    return frames, printed, pc, lr


_LOCK_AT = re.compile(r"\bat: ([A-Za-z_$][\w.$]*)(\+0x[0-9a-fA-F]+)?")
_LOCK_END = ("but task", "which lock", "the existing", "other info", "stack backtrace")


def _lockdep_func(lines: _Lines) -> str | None:
    """The function of a lockdep deadlock: where the new lock is taken (``is trying to acquire lock:``).

    The convention syzbot made: ``... (&sb->s_type->i_mutex_key#8){+.+.}-{3:3}, at: ni_rename+0x7c`` names
    the report, past lock helpers and inlined frames. When that lock is taken by a helper only (the
    allocator taking ``fs_reclaim``), the held lock's function names it instead.
    """
    head = lines.head(40)
    found: dict[str, list[tuple[str, bool]]] = {}
    for marker in ("is trying to acquire", "already holding lock"):
        found[marker] = []
        started = False
        for line in head:
            if not started:
                started = marker in line
                continue
            if line.startswith(_LOCK_END):
                break
            for m in _LOCK_AT.finditer(line):
                found[marker].append((func_name(m.group(1)), line.endswith("[inline]")))
    for want_real in (True, False):
        for at in found.values():
            funcs = [f for f, inline in at if not skipped(f) and not (want_real and inline)]
            if funcs:
                return funcs[0]
    return None


def _real_func(header: Header, line: str, lines: _Lines) -> str | None:
    """The header's function, past the inlined ones: the last of the repeated header lines.

    ``BUG: KASAN: use-after-free in vcs_read_buf ... [inline]`` is followed by the same header for
    each enclosing function down to the real one, ``... in vcs_read+0xaa7/0xb40``.
    """
    func = header.func
    if func is None or not line.endswith("[inline]"):
        return func
    for nxt in lines.head(12):
        h = _classify(nxt)
        if h is None or h.kind != header.kind or h.func is None:
            break
        func = h.func
        if not nxt.endswith("[inline]"):
            break
    return func


_PC_LINES = 80


def _titled(header: Header, line: str, lines: _Lines, line_no: int) -> CrashReport:
    report = _title_rules(header, line, lines, line_no)
    if report.corrupted and not report.evidence:
        report = replace(report, evidence=(line, *lines.head(_EVIDENCE_LINES)))
    return report


def _title_rules(header: Header, line: str, lines: _Lines, line_no: int) -> CrashReport:
    short = _short_report(header, line, lines, line_no)
    return short if short is not None else _kernel_report(header, line, lines, line_no)


def _short_report(header: Header, line: str, lines: _Lines, line_no: int) -> CrashReport | None:
    """A user-space report (titled by its own reader), or one whose header is its whole title; else None."""
    if header.kind == "tombstone":
        title, g, native_alts, corrupted = userspace.native_crash(chain([line], lines), header)
        return CrashReport("tombstone", title, g, corrupted, native_alts, (), line_no)
    if header.kind == "java":
        title, g, corrupted = userspace.java_crash(chain([line], lines), header, line)
        return CrashReport("java", title, g, corrupted, (), (), line_no)
    if header.kind == "anr":
        return CrashReport("anr", userspace.anr(lines, header), None, False, (), (), line_no)
    if header.kind == "segfault" and header.final is None:
        lib = next((m.group(1) for x in lines.head(3) if (m := _EPC_IN.match(x))), None)
        title = f"{header.base} ({userspace.library(lib)})" if lib else header.base
        return CrashReport("segfault", title, None, False, (), (), line_no)
    if header.final is not None and header.kind != "kcsan":
        return CrashReport(header.kind, header.final, None, False, header.alternatives, (), line_no)
    return None


def _kernel_base(header: Header, lines: _Lines) -> str:
    """The title before its guilty function, completed from the lines after the header where needed."""
    base = header.base
    if header.kind == "kasan":
        access = next((m.group(1) for x in lines.head(8) if (m := _ACCESS.match(x))), None)
        if access and not base.startswith("KFENCE"):
            base = f"{base} {access}"
    elif header.kind == "ubsan" and base == "UBSAN: undefined-behaviour":
        base = f"UBSAN: {kernel.ubsan_kind(' '.join(lines.head(2))) or 'undefined-behaviour'}"
    return base


def _kernel_report(header: Header, line: str, lines: _Lines, line_no: int) -> CrashReport:
    base = _kernel_base(header, lines)
    frames, printed, pc, lr = _stack(lines, header)
    func = _real_func(header, line, lines)
    if header.kind == "lockdep" and header.base == "possible deadlock":
        func = _lockdep_func(lines) or func
    candidates = [func, pc, *frames]
    inline_g = guilty([header.func, pc, *printed])  # the title before inlined frames were folded
    if lr and not frames:
        candidates.append(lr)  # the PC was in a helper and the stack was lost: the caller is the best we have
    stack = meaningful(candidates)
    title, g = _kernel_title(header, base, candidates, func)
    corrupted = header.generic or (header.needs_func and g is None)
    alts = [a for a in header.alternatives if a != title]
    if inline_g and g and inline_g != g and not corrupted:
        alts.append(f"{base} in {inline_g}")  # links faults filed before inlined frames were folded
    if not corrupted and len(stack) >= 2:
        # One bug seen as a KASAN report on one build and as a GPF or paging fault on another, or cut
        # before its first line (an ARM "Internal error: Oops" without its "Unable to handle"), meets
        # on its call path: its top three frames, and (memory faults) its top two. Not on the
        # guilty function alone (the "bad memory access in F" v3 carried until December 2026): a
        # function many paths crash into (klist_next, l2cap_sock_ready_cb) joined different bugs.
        cls = "memory" if header.memory else header.kind
        alts.append(f"{cls} stack: " + " < ".join(stack[:3]))
        if len(stack) >= 3 and header.memory:
            alts.append(f"{cls} stack: " + " < ".join(stack[:2]))
    return CrashReport(header.kind, title, g, corrupted, tuple(alts), tuple(stack[:8]), line_no)


def _kernel_title(header: Header, base: str, candidates: list[str | None], func: str | None) -> tuple[str, str | None]:
    """Title and guilty frame of a kernel report from its candidate frames (function, PC, stack, LR)."""
    g = guilty(candidates)
    if header.kind == "kcsan":
        title = header.final or base
        return title, g or (title.split(" in ", 1)[1] if " in " in title else None)
    if g is None and header.kind == "warning" and func:
        return f"{base} in {func}", g  # the WARN() sits in a helper and no caller is shown: the helper names it
    if g is None and header.alternatives and (not header.needs_func or header.kind == "bug"):
        return header.alternatives[0], g  # kernel BUG at FILE:N, WARNING at FILE:N: the place names the bug
    # Only helpers are left (a report cut after "IP: __memset"): name the helper, mark it corrupted; but
    # a BUG: about its caller (sleeping in atomic context) cut before the caller names no helper.
    g_helper = next((c for c in candidates if c), None) if g is None and header.needs_func else None
    where = g or (None if header.kind == "bug" else g_helper)
    return (f"{base} in {where}" if where else base), g


_EVIDENCE_LINES = 12
