"""Title rules for kernel crash reports (x86-64, ARM, ARM64, MIPS, PowerPC), one family at a time.

Titles follow the convention syzbot made the field's (``KASAN: use-after-free Read in F``,
``general protection fault in F``, ``WARNING in F``, ``possible deadlock in F``...), so a title
reads the same to anyone who has triaged kernel crashes. :func:`classify` reads one cleaned line and
returns the :class:`Header` of the report it starts, or None; the finder adds the guilty function.

The ARM/ARM64 forms set-top boxes print (``Unable to handle kernel NULL pointer dereference at
virtual address``, ``Internal error: Oops: ... [#1]``) get the same titles as their x86 forms, so
one bug seen on two architectures is one fault.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lab.rma.crash.frames import func_name
from lab.rma.crash.report import Header

_F = r"([A-Za-z_$][\w.$]*)(?:\+0x[0-9a-fA-F]+(?:/0x[0-9a-fA-F]+)?)?"
_UBSAN_KINDS = [
    (re.compile(r"shift exponent|left shift of"), "shift-out-of-bounds"),
    (re.compile(r"index -?\d+ is out of range"), "array-index-out-of-bounds"),
    (re.compile(r"signed integer overflow|unsigned integer overflow|negation of"), "integer-overflow"),
    (re.compile(r"division by zero|division of"), "divide-by-zero"),
    (re.compile(r"load of value"), "invalid-load"),
    (re.compile(r"null pointer|misaligned address|member access within"), "invalid-pointer"),
]

_Make = Callable[[re.Match[str]], Header | None]
_RULES: list[tuple[re.Pattern[str], _Make]] = []


def _rule(pattern: str) -> Callable[[_Make], _Make]:
    """Register a title rule: ``pattern`` is searched in a cleaned line, the function makes its header."""

    def add(fn: _Make) -> _Make:
        _RULES.append((re.compile(pattern), fn))
        return fn

    return add


def _fn(m: re.Match[str], group: int | str) -> str | None:
    value = m.group(group)
    return func_name(value) if value else None


def _file(path: str) -> str:
    """``net/core/dev.c:1234`` without its line number (it moves between builds)."""
    path = re.sub(r"^(?:\.\./)+", "", path)  # out-of-tree builds print ../drivers/...
    return re.sub(r":\d+(?::\d+)?$", ":N", path.rstrip("!:,"))


# --- sanitizers -------------------------------------------------------------------------------


@_rule(rf"^BUG: KASAN: ([\w-]+(?: or [\w-]+)*)(?: in {_F})?")
def _kasan(m: re.Match[str]) -> Header:
    kind = m.group(1)
    # "Read"/"Write" comes from the "Read of size 8 at addr" line: the finder fills it in.
    return Header("kasan", f"KASAN: {kind}", _fn(m, 2), memory=True)


@_rule(rf"^BUG: KFENCE: ([\w-]+)(?: (read|write))?(?: in {_F})?")
def _kfence(m: re.Match[str]) -> Header:
    access = f" {m.group(2).capitalize()}" if m.group(2) else ""
    return Header("kasan", f"KFENCE: {m.group(1)}{access}", _fn(m, 3), memory=True)


@_rule(rf"^BUG: KMSAN: ([\w -]+?)(?: in {_F}|$)")
def _kmsan(m: re.Match[str]) -> Header:
    return Header("kmsan", f"KMSAN: {m.group(1)}", _fn(m, 2))


@_rule(rf"^BUG: KCSAN: ([\w-]+) in {_F}(?:\s*/\s*{_F})?")
def _kcsan(m: re.Match[str]) -> Header:
    funcs = " / ".join(f for f in (_fn(m, 2), _fn(m, 3)) if f)
    return Header("kcsan", f"KCSAN: {m.group(1)}", final=f"KCSAN: {m.group(1)} in {funcs}")


@_rule(r"^UBSAN: (.+?) in (\S+)")
def _ubsan(m: re.Match[str]) -> Header:
    kind = m.group(1).strip()
    if kind.lower().startswith("undefined behaviour"):
        kind = "undefined-behaviour"  # the finder refines it from the next line
    # Without a stack (a report quoted in a commit message) the source line names the bug.
    return Header("ubsan", f"UBSAN: {kind}", needs_func=False, alternatives=(f"UBSAN: {kind} at {_file(m.group(2))}",))


def ubsan_kind(message: str) -> str | None:
    """The modern UBSAN category of an old ``Undefined behaviour`` report, from its message line."""
    for pat, kind in _UBSAN_KINDS:
        if pat.search(message):
            return kind
    return None


# --- faults on a bad address ------------------------------------------------------------------


@_rule(r"^(?:Oops: )?general protection fault\b")
def _gpf(m: re.Match[str]) -> Header:
    return Header("oops", "general protection fault", use_pc=True, memory=True)


@_rule(
    r"^(?:CPU \d+ )?(?:BUG: (?:unable to handle )?[Kk]ernel NULL pointer dereference"
    r"|Unable to handle kernel NULL pointer dereference)"
)
def _null(m: re.Match[str]) -> Header:
    return Header("oops", "BUG: unable to handle kernel NULL pointer dereference", use_pc=True, memory=True)


@_rule(
    r"^(?:CPU \d+ )?(?:BUG: (?:unable|Unable) to handle (?:kernel paging request|page fault for address"
    r"|kernel page fault"
    r"|kernel data access|kernel instruction fetch"
    r"|kernel at)"
    r"|Unable to handle kernel (?:paging request|access to user memory|execute from non-executable memory"
    r"|write to read-only memory|read from unreadable memory|unknown \d+ at virtual address))"
)
def _paging(m: re.Match[str]) -> Header:
    return Header("oops", "BUG: unable to handle kernel paging request", use_pc=True, memory=True)


@_rule(r"^(?:Oops: )?(invalid opcode|divide error|stack segment|double fault|alignment check): [0-9a-f]+ \[#\d+\]")
def _x86_trap(m: re.Match[str]) -> Header:
    return Header("oops", m.group(1).replace("stack segment", "stack segment fault"), use_pc=True)


@_rule(r"^Internal error: (.+?)(?:: [0-9a-fA-F]+)? \[#\d+\]")
def _internal(m: re.Match[str]) -> Header:
    what = re.sub(r":.*$", "", m.group(1)).strip()
    memory = what == "Oops"
    return Header("oops", f"Internal error: {what}", use_pc=True, memory=memory)


@_rule(r"^Oops: [0-9a-f]+ \[#\d+\]|^Oops\[#\d+\]:")
def _bare_oops(m: re.Match[str]) -> Header:
    return Header("oops", "Oops", use_pc=True, memory=True)


@_rule(r"^Unhandled fault: (.+?) \(0x[0-9a-fA-F]+\)")
def _arm_unhandled_fault(m: re.Match[str]) -> Header:
    # ARM bus errors: a register read of a powered-down or unclocked block (external abort) names the
    # driver whose access faulted; the Internal error line after it says nothing more.
    return Header("oops", f"Unhandled fault: {m.group(1).strip()}", use_pc=True, memory=True)


@_rule(r"^Unhandled exception: IPSR = ")
def _armv7m_exception(m: re.Match[str]) -> Header:
    return Header("oops", "Unhandled exception", use_pc=True)  # ARMv7-M (no MMU) kernels


@_rule(r"^Unhandled kernel unaligned access")
def _mips_unaligned(m: re.Match[str]) -> Header:
    return Header("oops", "Unhandled kernel unaligned access", use_pc=True, memory=True)


# --- BUG(), lockups, stalls, hangs, leaks -------------------------------------------------------


# BUG()s in checkers that report on behalf of their caller: their own line names no bug.
_CHECKER_BUG = re.compile(r"^(?:lib/list_debug\.c|mm/usercopy\.c|net/core/skbuff\.c|lib/refcount\.c)")


@_rule(r"^kernel BUG at ([^\s!]+)")
def _bug_at(m: re.Match[str]) -> Header:
    where = _file(m.group(1))
    checker = bool(_CHECKER_BUG.match(where))
    return Header("bug", "kernel BUG", use_pc=True, needs_func=checker, alternatives=(f"kernel BUG at {where}",))


@_rule(r"^page dumped because: VM_BUG_ON_(?:PAGE|FOLIO|PGFLAGS)")
def _vm_bug_on(m: re.Match[str]) -> Header:
    return Header("bug", "kernel BUG", use_pc=True)  # the "kernel BUG at mm/..." line follows, when printed


@_rule(r"^(?:NMI )?(?:watchdog: )?BUG: soft lockup\b")
def _soft_lockup(m: re.Match[str]) -> Header:
    return Header("lockup", "BUG: soft lockup", use_pc=True)


@_rule(r"(?:Watchdog detected|watchdog: Watchdog detected) hard LOCKUP")
def _hard_lockup(m: re.Match[str]) -> Header:
    return Header("lockup", "BUG: hard lockup", use_pc=True)


@_rule(r"^(?:rcu: )?INFO: rcu_\w+ (?:self-)?detected (?:expedited )?stalls?\b")
def _rcu(m: re.Match[str]) -> Header:
    return Header("rcu-stall", "INFO: rcu detected stall", use_pc=True)


@_rule(r"^INFO: task (.+?):\d+ blocked for more than \d+ seconds")
def _hung(m: re.Match[str]) -> Header:
    return Header("hung-task", "INFO: task hung")


@_rule(r"^INFO: trying to register non-static key")
def _nonstatic(m: re.Match[str]) -> Header:
    return Header("lockdep", "INFO: trying to register non-static key", stack_after="Call Trace")


@_rule(r"^(?:BUG: memory leak|unreferenced object 0x[0-9a-f]+ \(size \d+\)|kmemleak: \d+ new suspected memory leaks)")
def _leak(m: re.Match[str]) -> Header:
    return Header("memory-leak", "memory leak", stack_after="backtrace")


# --- lockdep and WARNING() ------------------------------------------------------------------------

_LOCKDEP = {
    "possible circular locking dependency detected": "possible deadlock",
    "possible recursive locking detected": "possible deadlock",
    "possible irq lock inversion dependency detected": "possible deadlock",
    "inconsistent lock state": "inconsistent lock state",
    "suspicious RCU usage": "suspicious RCU usage",
    "bad unlock balance detected": "WARNING: bad unlock balance",
    "held lock freed": "WARNING: held lock freed",
    "lock held when returning to user space": "WARNING: lock held when returning to user space",
    "nested lock was not taken": "WARNING: nested lock was not taken",
}


@_rule(
    r"^(?:WARNING: |\[ INFO: |\[ BUG: )(possible circular locking dependency detected"
    r"|possible recursive locking detected"
    r"|possible irq lock inversion dependency detected|inconsistent lock state|suspicious RCU usage"
    r"|bad unlock balance detected|held lock freed|lock held when returning to user space|nested lock was not taken"
    r"|(?:HARD|SOFT)IRQ-(?:safe|READ-safe) -> (?:HARD|SOFT)IRQ-(?:unsafe|READ-unsafe) lock order detected)"
)
def _lockdep(m: re.Match[str]) -> Header:
    title = _LOCKDEP.get(m.group(1), "possible deadlock")
    return Header("lockdep", title, stack_after="stack backtrace")


@_rule(r"^refcount_t: ")
def _refcount(m: re.Match[str]) -> Header:
    return Header("warning", "WARNING: refcount bug")


@_rule(r"^ODEBUG: ")
def _odebug(m: re.Match[str]) -> Header:
    return Header("warning", "WARNING: ODEBUG bug")


@_rule(
    r"^WARNING: (?:CPU: \d+ PID: \d+ )?at(?: (\S+?)(?:,? (?:CPU#\d+: \S+ )?" + _F + r"(?:\(\))?)?)?(?:\s|$)"
    r"|^WARNING: (\S+:\d+) at " + _F
)
def _warning(m: re.Match[str]) -> Header:
    where = m.group(1) or m.group(3)
    if not where:  # "WARNING: CPU: 1 PID: 5777 at" with the location and function on the next line
        return Header("warning", "WARNING", use_pc=True, needs_func=False)
    func = _fn(m, 2) if m.group(1) else _fn(m, 4)
    if where.startswith("lib/refcount.c") or (func or "").startswith("refcount_"):
        return Header("warning", "WARNING: refcount bug", func=func, use_pc=True)
    if where.startswith("lib/debugobjects.c"):
        return Header("warning", "WARNING: ODEBUG bug", func=func, use_pc=True)
    loc = f"WARNING at {_file(where)}"
    return Header("warning", "WARNING", func=func, use_pc=True, needs_func=False, alternatives=(loc,))


# --- BUG: anything else, and the panic line -------------------------------------------------------

_BUG_CUT = re.compile(r" at \S+:\d+| - |: | on CPU| \[|, | \(|!$| for address| in process | pfn:| mm:|\s*$")


# BUG: reports about the caller (only its frame names the bug), and the wording they are known by when a
# mail client wrapped the line ("BUG: sleeping function called from invalid" / "context at ...").
_BUG_OF_CALLER = {
    "sleeping function called from invalid": "sleeping function called from invalid context",
    "scheduling while atomic": "scheduling while atomic",
    "using smp_processor_id() in preemptible": "using smp_processor_id() in preemptible code",
    "Invalid wait context": "Invalid wait context",
}


@_rule(r"^BUG: (.+)$")
def _bug(m: re.Match[str]) -> Header | None:
    text = m.group(1)
    for start, what in _BUG_OF_CALLER.items():
        if text.startswith(start):
            return Header("bug", f"BUG: {what}", use_pc=True)
    cut = _BUG_CUT.search(text)
    what = text[: cut.start()] if cut else text
    if not what.strip():
        return None
    return Header("bug", f"BUG: {what.strip()}", use_pc=True, needs_func=False)


_GENERIC_PANIC = re.compile(
    r"^(?:Fatal exception(?: in interrupt)?|Oops.*|panic_on_warn set.*|panic_on_oops.*|softlockup: hung tasks"
    r"|hung_task: blocked tasks|hardlockup: .*|Hard LOCKUP|Attempted to kill the idle task!|Aiee, killing interrupt"
    r" handler!|System is deadlocked on memory|Out of memory.*|RCU Stall|kmemleak.*|MCE: .*|Fatal machine check|"
    r"Watchdog detected hard LOCKUP.*|Fatal Machine check|Fatal hardware error!|Software Watchdog Timer expired)?\s*$",
    re.I,
)


@_rule(r"(?:^|[\]:] )Kernel panic - not syncing:? ?(.*)$")
def _panic(m: re.Match[str]) -> Header:
    reason = re.sub(r"\s*\]---$", "", m.group(1)).strip()
    generic = bool(_GENERIC_PANIC.match(reason))
    title = f"kernel panic: {reason}" if reason else "kernel panic"
    return Header("panic", title, needs_func=generic, generic=generic, final=None if generic else title)


# --- U-Boot ---------------------------------------------------------------------------------------


@_rule(r'^"(Synchronous Abort|Error|IRQ|FIQ|SError)" handler, esr (0x[0-9a-fA-F]+)')
def _uboot_arm64(m: re.Match[str]) -> Header:
    t = f'U-Boot: "{m.group(1)}" handler, esr {m.group(2)}'
    return Header("bootloader", t, needs_func=False, final=t)


@_rule(r"^(data abort|prefetch abort|undefined instruction|not used|software interrupt)$")
def _uboot_arm32(m: re.Match[str]) -> Header:
    t = f"U-Boot: {m.group(1)}"  # U-Boot's ARM exception vectors print the name alone, then pc/lr
    return Header("bootloader", t, needs_func=False, final=t)


# --- watchdog resets and OOM kills (titled as before v3) ---------------------------------------------


@_rule(
    r"(?i:watchdog(?:: \w+)? (?:reset|did not stop|timeout)|reset reason: watchdog|WDT reset"
    r"|watchdog: watchdog\d+: watchdog did not stop)"
)
def _watchdog(m: re.Match[str]) -> Header:
    return Header("watchdog", "watchdog reset", needs_func=False, generic=True, final="watchdog reset")


def _comm(name: str) -> str:
    """A process name without worker numbers: ``kworker/1:2`` -> ``kworker``."""
    return re.sub(r"/[\d:uH]+$", "", name.strip())


@_rule(r"(?:Memory cgroup )?[Oo]ut of memory(?: \(oom_kill_allocating_task\))?: Kill(?:ed)? process \d+ \(([^)]+)\)")
def _oom(m: re.Match[str]) -> Header:
    t = f"out of memory: killed {_comm(m.group(1))}"
    return Header("oom", t, needs_func=False, final=t)


@_rule(r"^(\S+?) invoked oom-killer:")
def _oom_invoked(m: re.Match[str]) -> Header:
    t = f"oom-killer invoked by {_comm(m.group(1))}"
    return Header("oom", t, needs_func=False, generic=True, final=t)


# Cheap first look (most lines holding a trigger word start no report): the words a header starts
# with, and the words of the few rules that match anywhere in a line.
_STARTS = re.compile(
    r"BUG[: ]|WARNING: |Unable to handle|CPU \d+ Unable|general protection|Oops|invalid opcode|divide error"
    r"|stack segment|double fault|alignment check|Internal error|kernel BUG|watchdog: |rcu: |INFO: |UBSAN: "
    r"|refcount_t: |ODEBUG: |unreferenced object|kmemleak: |\[ (?:INFO|BUG): |Kernel panic"
    r"|Unhandled |NMI watchdog|page dumped because: VM_BUG|\"\w+(?: Abort)?\" handler, esr|data abort$|prefetch abort$"
    r"|undefined instruction$|not used$|software interrupt$"
)
_ANYWHERE = re.compile(r"LOCKUP|atchdog|ATCHDOG|WDT|ut of memory|invoked oom-killer|Kernel panic - not syncing")


def classify(line: str) -> Header | None:
    """The header of the kernel report ``line`` starts, or None when it starts none."""
    if not _STARTS.match(line) and not _ANYWHERE.search(line):
        return None
    for pattern, make in _RULES:
        m = pattern.search(line)
        if m is not None:
            header = make(m)
            if header is not None:
                return header
    return None
