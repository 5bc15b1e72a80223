"""Console-log titles of fingerprint algorithms v1 and v2 (kept: faults filed under them are still found).

Filing computes the hashes of every registered algorithm version to find faults filed by an older
stblab release; these rules must therefore never change. The current rules (v3) are
:mod:`lab.rma.crash`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from lab.rma.signature import Fingerprint, _retag, normalise, strip_line

# Frames that say how the kernel reported a crash, not where it happened.
_GENERIC_FRAMES = {
    "dump_stack",
    "dump_stack_lvl",
    "dump_backtrace",
    "show_stack",
    "show_regs",
    "panic",
    "die",
    "__die",
    "die_kernel_fault",
    "oops_end",
    "__warn",
    "warn_slowpath_fmt",
    "report_bug",
    "do_exit",
    "make_task_dead",
    "do_group_exit",
    "bad_area",
    "__do_kernel_fault",
    "do_page_fault",
    "do_translation_fault",
    "do_mem_abort",
    "el1_abort",
    "el1h_64_sync_handler",
    "el1h_64_sync",
    "el0_svc",
    "el0t_64_sync_handler",
    "el0t_64_sync",
    "invoke_syscall",
    "do_el0_svc",
    "__dabt_svc",
    "__dabt_usr",
    "exc_page_fault",
    "asm_exc_page_fault",
    "page_fault_oops",
    "handle_mm_fault",
    "ret_fast_syscall",
    "ret_from_fork",
    "kthread",
    "entry_SYSCALL_64_after_hwframe",
    "do_syscall_64",
    "out_of_memory",
    "oom_kill_process",
    "dump_header",
    "watchdog_timer_fn",
    "__hrtimer_run_queues",
}


def _func(sym: str) -> str:
    """``foo_bar+0x1c/0x40 [mod]`` -> ``foo_bar`` (compiler suffixes like ``.isra.0`` dropped)."""
    sym = sym.strip().split("+", 1)[0].split(" ", 1)[0]
    return re.sub(r"\.(?:isra|constprop|part|cold|lto_priv)(?:\.\d+)?", "", sym)


def _comm(name: str) -> str:
    """A process name without worker numbers: ``kworker/1:2`` -> ``kworker``."""
    return re.sub(r"/[\d:uH]+$", "", name.strip())


# --- console log parsing ---------------------------------------------------------------------

_FRAME_ARM = re.compile(r"\[<[0-9a-f]+>\]\s+\(([A-Za-z_][\w.]*)(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?(?: \[[^\]]+\])?\)", re.I)
_FRAME_SYM = re.compile(r"^(?:\?\s+)?([A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+", re.I)
_FRAME_ARM64 = re.compile(r"^\s*([A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+", re.I)
_PC = re.compile(
    r"^(?:PC is at|pc\s*:|RIP:\s*[0-9a-f]+:|EIP:\s*[0-9a-f]*:?)\s*\[?<?[0-9a-f]*>?\]?\s*([A-Za-z_][\w.]*)\+", re.I
)

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("null-deref", re.compile(r"(?:Unable to handle kernel |BUG: (?:kernel )?)NULL pointer dereference", re.I)),
    (
        "paging",
        re.compile(r"(?:Unable to handle kernel paging request|BUG: unable to handle (?:page fault|kernel paging))"),
    ),
    ("bug-at", re.compile(r"kernel BUG at ([^\s!]+)")),
    ("bug", re.compile(r"^BUG: (.+)$")),
    ("oops", re.compile(r"Internal error: Oops(?: - (\w[\w ]*))?")),
    ("warning", re.compile(r"^WARNING: (?:CPU: \d+ PID: \d+ at )?(\S+)")),
    ("soft-lockup", re.compile(r"BUG: soft lockup - CPU#\d+ stuck for \d+s! \[([^\]]+)\]")),
    ("hard-lockup", re.compile(r"Watchdog detected hard LOCKUP", re.I)),
    ("rcu-stall", re.compile(r"rcu_?\w*: INFO: rcu_\w+ detected stalls|INFO: rcu_\w+ self-detected stall")),
    ("hung-task", re.compile(r"INFO: task ([^:]+):\d+ blocked for more than")),
    ("oom", re.compile(r"Out of memory(?: \(oom_kill_allocating_task\))?: Kill(?:ed)? process \d+ \(([^)]+)\)")),
    ("oom-invoked", re.compile(r"^(\S+?) invoked oom-killer:")),
    ("segfault", re.compile(r"^(\S+?)\[\d+\]: segfault at \S+ ip \S+ sp \S+ error \S+(?: in ([^\[\s]+))?")),
    ("panic", re.compile(r"Kernel panic - not syncing: ?(.*)$")),
    (
        "watchdog",
        re.compile(
            r"(watchdog(?:: \w+)? (?:reset|did not stop|timeout)|reset reason: watchdog|"
            r"WDT reset|watchdog: watchdog\d+: watchdog did not stop)",
            re.I,
        ),
    ),
]

# Panic reasons that only say "an earlier crash killed us": the earlier crash names the bug.
_GENERIC_PANIC = re.compile(
    r"^(Fatal exception(?: in interrupt)?|Oops|softlockup: hung tasks|hung_task: blocked tasks|"
    r"Attempted to kill the idle task!|System is deadlocked on memory|Out of memory.*)$",
    re.I,
)


@dataclass
class _Crash:
    kind: str
    title: str
    line_no: int
    generic: bool = False
    frames: list[str] = field(default_factory=list)
    pc: str | None = None
    extra_alts: list[str] = field(default_factory=list)


def _frames_after(lines: list[str], start: int, limit: int = 60) -> tuple[list[str], str | None]:
    """Call-trace functions and the faulting PC in the lines after a crash header."""
    frames: list[str] = []
    pc: str | None = None
    in_trace = False
    for line in lines[start : start + limit]:
        m = _PC.match(line)
        if m and pc is None:
            pc = _func(m.group(1))
            continue
        if re.match(r"^(?:Call trace|Call Trace|Backtrace):?", line, re.I):
            in_trace = True
            continue
        if re.match(r"^(?:---\[ end trace|Code: |Kernel panic|Rebooting in)", line):
            if in_trace:
                break
            continue
        m = _FRAME_ARM.search(line)
        if m:
            frames.append(_func(m.group(1)))
            continue
        if in_trace:
            if line.startswith("?"):
                continue  # unreliable frame
            m = _FRAME_SYM.match(line) or _FRAME_ARM64.match(line)
            if m:
                frames.append(_func(m.group(1)))
    return frames, pc


def _meaningful(frames: list[str]) -> list[str]:
    out: list[str] = []
    for f in frames:
        if f in _GENERIC_FRAMES or f.startswith(("__sys_", "__arm64_sys_", "__x64_sys_")) and out:
            continue
        if not out or out[-1] != f:
            out.append(f)
    return out


# Cheap first look: only lines with one of these words can start a crash report. Case-sensitive on
# purpose (kernel messages have fixed case; a case-insensitive alternation is ten times slower).
_CANDIDATE = re.compile(
    r"NULL pointer|ULL pointer|paging request|page fault|BUG|Oops|WARNING:|ockup|OCKUP|rcu|INFO: task|"
    r"Out of memory|oom-killer|segfault|panic|atchdog|WDT"
)


def _candidate_lines(text: str) -> list[int]:
    """Numbers of the lines (split on newline) holding a candidate word, in order, once each."""
    out: list[int] = []
    line, pos = 0, 0
    for m in _CANDIDATE.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        if not out or out[-1] != line:
            out.append(line)
    return out


def _crashes(raw: list[str], candidates: list[int]) -> list[_Crash]:
    stripped: dict[int, str] = {}

    def line_at(i: int) -> str:
        if i not in stripped:
            stripped[i] = strip_line(raw[i])
        return stripped[i]

    crashes: list[_Crash] = []
    for i in candidates:
        line = line_at(i)
        for kind, pat in _PATTERNS:
            m = pat.search(line)
            if not m:
                continue
            crash = _make_crash(kind, m, line, i)
            if crash is not None:
                crashes.append(crash)
            break
    for c in crashes:
        following = [line_at(j) for j in range(c.line_no + 1, min(len(raw), c.line_no + 61))]
        frames, pc = _frames_after(following, 0)
        c.frames, c.pc = _meaningful(frames), pc
    return crashes


def _panic_crash(m: re.Match[str], i: int) -> _Crash:
    reason = m.group(1).strip()
    generic = bool(_GENERIC_PANIC.match(reason)) or not reason
    return _Crash("panic", f"kernel panic: {reason}" if reason else "kernel panic", i, generic=generic)


def _segfault_crash(m: re.Match[str], i: int) -> _Crash:
    where = f" in {m.group(2)}" if m.group(2) else ""
    return _Crash("segfault", f"segfault in {_comm(m.group(1))}{where}", i)


# What each pattern of _PATTERNS makes of its match (m) on line i: one entry per report shape.
_MAKERS: dict[str, Callable[[re.Match[str], int], _Crash]] = {
    "null-deref": lambda m, i: _Crash("oops", "NULL pointer dereference", i),
    "paging": lambda m, i: _Crash("oops", "unable to handle kernel paging request", i),
    "bug-at": lambda m, i: _Crash("bug", f"kernel BUG at {m.group(1)}", i),
    "bug": lambda m, i: _Crash("bug", f"BUG: {m.group(1)}", i),
    "oops": lambda m, i: _Crash("oops", f"Oops - {m.group(1)}" if m.group(1) else "Oops", i, generic=True),
    "warning": lambda m, i: _Crash("warning", "WARNING", i, extra_alts=[f"WARNING at {m.group(1)}"]),
    "soft-lockup": lambda m, i: _Crash("watchdog", f"soft lockup in {_comm(m.group(1))}", i),
    "hard-lockup": lambda m, i: _Crash("watchdog", "hard lockup", i),
    "rcu-stall": lambda m, i: _Crash("watchdog", "rcu stall", i),
    "hung-task": lambda m, i: _Crash("watchdog", f"task hung: {_comm(m.group(1))}", i),
    "oom": lambda m, i: _Crash("oom", f"out of memory: killed {_comm(m.group(1))}", i),
    "oom-invoked": lambda m, i: _Crash("oom", f"oom-killer invoked by {_comm(m.group(1))}", i, generic=True),
    "segfault": _segfault_crash,
    "panic": _panic_crash,
    "watchdog": lambda m, i: _Crash("watchdog", "watchdog reset", i, generic=True),
}


def _make_crash(kind: str, m: re.Match[str], line: str, i: int) -> _Crash | None:
    make = _MAKERS.get(kind)
    return make(m, i) if make is not None else None


def _finish(c: _Crash) -> tuple[str, list[str]]:
    """Title of a crash (with the crashing function where it has one) and its alternatives."""
    where = c.pc or (c.frames[0] if c.frames else None)
    alts: list[str] = list(c.extra_alts)
    title = c.title
    if c.kind in {"oops", "bug", "warning"} and where:
        title = f"{c.title} in {where}"
        alts.append(f"{c.kind} in {where}")
    elif c.kind == "watchdog" and c.title.startswith("soft lockup") and where:
        title = f"soft lockup in {where}"  # the process (often a kworker) names no bug; the code does
    elif c.kind == "panic" and where and c.generic:
        title = f"{c.title} in {where}"
    stack = _meaningful(([c.pc] if c.pc else []) + c.frames)
    if len(stack) >= 2:
        alts.append("stack: " + " < ".join(stack[:3]))
    return title, alts


def _fingerprint_log_v1(text: str) -> Fingerprint | None:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    crashes = _crashes(lines, _candidate_lines(text))
    if not crashes:
        return None
    # The first specific crash names the bug; generic ones (a panic that only says "Fatal exception",
    # a bare watchdog reset) name it only when nothing specific came before them.
    specific = [c for c in crashes if not c.generic]
    first = specific[0] if specific else crashes[0]
    title, alts = _finish(first)
    # A generic header that came first (Oops line before the "PC is at") lends its frames.
    if not first.frames:
        for c in crashes:
            if c.frames and abs(c.line_no - first.line_no) < 40:
                first.frames = c.frames
                title, alts = _finish(first)
                break
    title = normalise(title)
    seen = {title}
    alternatives: list[str] = []
    for alt in alts:
        alt = normalise(alt)
        if alt not in seen:
            seen.add(alt)
            alternatives.append(alt)
    return Fingerprint(first.kind, title, tuple(alternatives), 1, tuple(first.frames[:8]))


# --- version 2 -------------------------------------------------------------------------------
# v1 titled a WARNING with no crashing function (its call trace lost, as on a truncated serial
# console) just "WARNING", so every such warning in the lab became one fault. v2 names the source
# location the kernel printed instead. Checks and other failures are titled as in v1.


def _fingerprint_log_v2(text: str) -> Fingerprint | None:
    fp = _fingerprint_log_v1(text)
    if fp is None:
        return None
    if fp.kind == "warning" and fp.title == "WARNING":
        at = [a for a in fp.alternatives if a.startswith("WARNING at ")]
        if at:
            rest = tuple(a for a in fp.alternatives if a != at[0])
            return Fingerprint(fp.kind, at[0], rest, 2, fp.frames)
    return _retag(fp, 2)
