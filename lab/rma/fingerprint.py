"""Fingerprints: a console log or a failed check -> a normalised title and the hashes filing keys on.

Learned from syzbot: a fault is worth filing only if it is the same fault every time it appears.
The console log is reduced to the title of its first crash report with its guilty function, in the
form syzbot made the field's convention (``KASAN: use-after-free Read in F``, ``WARNING in F``,
``possible deadlock in F``...), and with everything that changes between two hits of one bug
normalised away: timestamps, addresses, offsets, PIDs, CPU numbers, counters. The current rules
(algorithm v3) live in :mod:`lab.rma.crash`: kernel reports of every family on x86-64, ARM, ARM64,
MIPS and RISC-V, Android tombstones, Java crashes, ANRs and user-space segfaults. Besides the title, a
report carries *alternative titles* (``bad memory access in F``, the top frames of its call trace)
so two reports of one bug meet even when one is a KASAN report and the other a GPF. A report cut off
before what names its bug is *corrupted*: titled, but never sharing a fingerprint with a complete
report (nor with another corrupted one whose remaining lines read differently).

A failed check (no console crash) is fingerprinted by scenario, check kind and what it was looking
at (screen, region, channel), never by the raw score.

Each :class:`Signature` names the algorithm version that made it. Changing the rules bumps
:data:`ALGORITHM_VERSION` and registers a new function in :data:`ALGORITHMS`; hashes already stored
under an older version are never rewritten (filing still computes them to find old faults, and
``stblab rma retitle`` moves stored faults to the current titles).

Example::

    >>> fp = fingerprint_log("[ 12.3] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b")
    >>> fp.title
    'kernel panic: Attempted to kill init! exitcode=ADDR'
    >>> fingerprint_log("[ 3.1] BUG: KASAN: use-after-free in igmp_start_timer+0xd2/0x110").title
    'KASAN: use-after-free in igmp_start_timer'
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

ALGORITHM_VERSION = 3

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


@dataclass(frozen=True)
class Signature:
    """One title and its hash under one algorithm version (``role`` is primary or alternative)."""

    title: str
    hash: str
    algorithm_version: int
    role: str = "primary"


@dataclass(frozen=True)
class Fingerprint:
    """What filing keys on: the kind of failure, its title, alternative titles and their hashes."""

    kind: str
    title: str
    alternatives: tuple[str, ...] = ()
    algorithm_version: int = ALGORITHM_VERSION
    frames: tuple[str, ...] = field(default=(), compare=False)
    corrupted: bool = False
    guilty: str | None = field(default=None, compare=False)
    evidence: str = ""

    @property
    def key_title(self) -> str:
        """What the primary hash is taken over: the title, marked when the report is corrupted.

        A report cut off before its stack keeps its title for people, but never shares a hash
        with a complete report (``general protection fault`` alone says nothing of which bug), nor
        with a corrupted one whose remaining lines read differently (``evidence``, normalised).
        """
        if not self.corrupted:
            return self.title
        digest = hashlib.sha256(self.evidence.encode()).hexdigest()[:12]
        return f"{self.title} (corrupted report {digest})"

    @property
    def signatures(self) -> list[Signature]:
        """Primary signature first, then one per alternative title."""
        v = self.algorithm_version
        out = [Signature(self.key_title, title_hash(self.key_title, v), v)]
        for alt in self.alternatives:
            out.append(Signature(alt, title_hash(alt, v), v, "alternative"))
        return out

    @property
    def hash(self) -> str:
        """Hash of the primary title (the fault's fingerprint)."""
        return title_hash(self.key_title, self.algorithm_version)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (what ``stblab rma title --json`` prints)."""
        return {
            "kind": self.kind,
            "title": self.title,
            "guilty_frame": self.guilty,
            "corrupted": self.corrupted,
            "alternatives": list(self.alternatives),
            "fingerprint": self.hash,
            "algorithm_version": self.algorithm_version,
            "signatures": [{"title": s.title, "hash": s.hash, "role": s.role} for s in self.signatures],
        }


def title_hash(title: str, algorithm_version: int = ALGORITHM_VERSION) -> str:
    """sha256 over the algorithm version and the title: the same title under another version differs."""
    return hashlib.sha256(f"stblab-fp/{algorithm_version}\n{title}".encode()).hexdigest()


# --- normalisation ---------------------------------------------------------------------------

_TS = re.compile(r"^\s*(?:<\d+>)?\[\s*\d+\.\d+\]\s?")  # [   12.345678] kernel timestamps
_SYSLOG_TS = re.compile(r"^(?:\d{4}-\d\d-\d\dT\S+|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)\s+(?:\S+\s+)?")
_HEX = re.compile(r"\b(?:0x)?[0-9a-fA-F]{8,}\b|\b0x[0-9a-fA-F]+\b")
_NUM = re.compile(r"(?<!\w)\d+")  # a number on its own, not the digits of an identifier (mt7601u)
_OFFSET = re.compile(r"\+0x[0-9a-f]+/0x[0-9a-f]+", re.I)
_WS = re.compile(r"\s+")
_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_MAX_TITLE = 300


def strip_line(line: str) -> str:
    """A console line without its kernel/syslog timestamp, colour codes and control characters."""
    line = _ANSI.sub("", line)
    line = _CTRL.sub("", line)
    line = _TS.sub("", line)
    return _SYSLOG_TS.sub("", line).strip()


def normalise(text: str) -> str:
    """Replace what changes between two hits of one bug: offsets, addresses, numbers, spacing.

    >>> normalise("CPU#1 stuck for 22s! at 0xffff0000c0de1234 pid 77")
    'CPU#N stuck for Ns! at ADDR pid N'
    """
    text = _OFFSET.sub("", text)
    text = _HEX.sub("ADDR", text)
    text = _NUM.sub("N", text)
    text = _WS.sub(" ", text).strip()
    return text[:_MAX_TITLE]


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


def _make_crash(kind: str, m: re.Match[str], line: str, i: int) -> _Crash | None:
    if kind == "null-deref":
        return _Crash("oops", "NULL pointer dereference", i)
    if kind == "paging":
        return _Crash("oops", "unable to handle kernel paging request", i)
    if kind == "bug-at":
        return _Crash("bug", f"kernel BUG at {m.group(1)}", i)
    if kind == "bug":
        return _Crash("bug", f"BUG: {m.group(1)}", i)
    if kind == "oops":
        return _Crash("oops", f"Oops - {m.group(1)}" if m.group(1) else "Oops", i, generic=True)
    if kind == "warning":
        return _Crash("warning", "WARNING", i, extra_alts=[f"WARNING at {m.group(1)}"])
    if kind == "soft-lockup":
        return _Crash("watchdog", f"soft lockup in {_comm(m.group(1))}", i)
    if kind == "hard-lockup":
        return _Crash("watchdog", "hard lockup", i)
    if kind == "rcu-stall":
        return _Crash("watchdog", "rcu stall", i)
    if kind == "hung-task":
        return _Crash("watchdog", f"task hung: {_comm(m.group(1))}", i)
    if kind == "oom":
        return _Crash("oom", f"out of memory: killed {_comm(m.group(1))}", i)
    if kind == "oom-invoked":
        return _Crash("oom", f"oom-killer invoked by {_comm(m.group(1))}", i, generic=True)
    if kind == "segfault":
        where = f" in {m.group(2)}" if m.group(2) else ""
        return _Crash("segfault", f"segfault in {_comm(m.group(1))}{where}", i)
    if kind == "panic":
        reason = m.group(1).strip()
        generic = bool(_GENERIC_PANIC.match(reason)) or not reason
        return _Crash("panic", f"kernel panic: {reason}" if reason else "kernel panic", i, generic=generic)
    if kind == "watchdog":
        return _Crash("watchdog", "watchdog reset", i, generic=True)
    return None


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


# --- failed checks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckDescriptor:
    """What a failed check was doing: the scenario, the kind of check, what it looked at.

    ``target`` names the screen, region or channel (``"channel 5 banner"``, ``"region 0,0,640,360"``).
    ``detail`` (scores, thresholds) is kept as evidence but never fingerprinted.
    """

    scenario: str
    check: str
    target: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def coerce(cls, value: CheckDescriptor | Mapping[str, Any]) -> CheckDescriptor:
        """Accept a descriptor or a mapping with ``scenario``, ``check`` (or ``kind``) and ``target``."""
        if isinstance(value, CheckDescriptor):
            return value
        try:
            return cls(
                str(value["scenario"]),
                str(value.get("check") or value["kind"]),
                str(value.get("target") or ""),
                dict(value.get("detail") or {}),
            )
        except KeyError as exc:
            raise ValueError(f"check descriptor needs 'scenario' and 'check': missing {exc}") from None


def _scenario_name(scenario: str) -> str:
    """A pytest node id without parameters or rig: ``scenarios/test_zap.py::test_zap[stb-a-3]`` -> ``...::test_zap``."""
    return re.sub(r"\[.*\]$", "", scenario.strip())


def _fingerprint_check_v1(check: CheckDescriptor) -> Fingerprint:
    scenario = _WS.sub(" ", _scenario_name(check.scenario))
    kind = _WS.sub(" ", check.check.strip())
    target = _WS.sub(" ", check.target.strip())
    on = f" on {target}" if target else ""
    title = f"check {kind} failed{on} in {scenario}"[:_MAX_TITLE]
    return Fingerprint("check", title, (), 1)


def _fingerprint_other_v1(test_id: str, symptom: str | None) -> Fingerprint:
    what = _WS.sub(" ", symptom.strip()) if symptom else "failure"
    return Fingerprint("other", normalise(f"{what} in {_scenario_name(test_id)}"), (), 1)


# --- version 2 -------------------------------------------------------------------------------
# v1 titled a WARNING with no crashing function (its call trace lost, as on a truncated serial
# console) just "WARNING", so every such warning in the lab became one fault. v2 names the source
# location the kernel printed instead. Checks and other failures are titled as in v1.


def _retag(fp: Fingerprint, version: int) -> Fingerprint:
    return Fingerprint(fp.kind, fp.title, fp.alternatives, version, fp.frames, fp.corrupted, fp.guilty, fp.evidence)


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


def _fingerprint_check_v2(check: CheckDescriptor) -> Fingerprint:
    return _retag(_fingerprint_check_v1(check), 2)


def _fingerprint_other_v2(test_id: str, symptom: str | None) -> Fingerprint:
    return _retag(_fingerprint_other_v1(test_id, symptom), 2)


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


def _fingerprint_check_v3(check: CheckDescriptor) -> Fingerprint:
    return _retag(_fingerprint_check_v1(check), 3)


def _fingerprint_other_v3(test_id: str, symptom: str | None) -> Fingerprint:
    return _retag(_fingerprint_other_v1(test_id, symptom), 3)


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
