"""Which lines of a console log can start a crash report: one C-speed pass instead of a look at every line.

Most lines of a log start no report, and most lines that hold a word like ``BUG`` or ``WARNING``
do not either (``stb-app: WARNING: buffer low``): a report's header stands at the start of the
message, after whatever carried the line (timestamps, syslog/journal/logcat prefixes, quote
markers, a shell prompt). :data:`GATE` is one regular expression that skips a superset of those
prefixes and accepts a line only when the message then starts the way some header does (the
header rules of :mod:`~lab.rma.crash.kernel` and :mod:`~lab.rma.crash.userspace`); ``re`` jumps
from line to line with its literal-prefix scan, so a 100 KB log costs one pass in C.

The gate is a *necessary* condition, wider than the rules: a line it lets through is still cleaned
and classified as before (:func:`lab.rma.crash.lines.clean`, ``classify``). It never rejects a line
a rule would title, with two deliberate exceptions kept by the finder anyway:

* rules that match anywhere in a line (``Kernel panic - not syncing``, watchdog resets, OOM kills,
  hard lockups) are found by :data:`ANYWHERE` words with ``str.find``;
* a Java exception printed by a handled-exception logger (a logcat ``W`` line, ``System.err``) is
  not a crash (the finder's own rule): the gate drops it when the logcat prefix says so, and the
  finder checks every line it lets through.

The finder removes colour codes from a log before the gate reads it (codes inside a prefix would
hide it); a log with an escape character left over skips the gate.
"""

from __future__ import annotations

import re

# Everything clean() strips before the message, more loosely. Each item starts with a literal or a
# character class, so ``re`` rejects it on the first character.
_PREFIX_ITEMS = (
    r"[^\S\n]+",  # spaces, tabs, \r
    # [ 12.3], [ ], [+0.000123], [Thu May 21 10:00:00 2026], [May21 10:00], [  T123]
    r"\[(?:[^\S\n]*+\+?[\d.]*+[^\S\n]*+|[^\S\n]*+[TC]\d+"
    r"|(?:[A-Z][a-z][a-z] ?)+[ \d]?\d \d\d:\d\d(?::\d\d)?(?: \d{4})?)\]",  # (possessive: "[  OK  ]" fails fast)
    # ISO date (journal, RFC 5424), maybe host and tag
    r"\d\d\d\d-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?(?: \S+ (?:kernel|[\w.@/-]+\[\d+\]):)?",
    r"\d[\d:.,\- \t\r\x0b\x0c\xa0]*+",  # logcat dates, times and pids (one character class: fast)
    r"/\S+ ",  # Android Studio: pid-tid/package
    r"[VDIEFA][ /](?!System\.err)[^:\uFE55\n]*?[:\uFE55]",  # logcat level and tag (not a handled exception's)
    r">+",  # quote markers
    r"<\d{1,3}>",  # printk level
    r"[\x00-\x08\x0b-\x1f\x7f]+",  # control characters (clean() deletes them)
    r"\*\* \d+ printk messages dropped \*\*",
    r"kern(?:el:|\s*:\s*\w+\s*:)",  # kernel: tag, LAVA's "kern  :emerg :"
    # syslog, syslog without host, OpenWrt logread (any capitalised word for the month and day)
    r"[A-Z][a-z][a-z] [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ (?:[a-z]+\.[a-z]+ )?(?:kernel|[\w.@/-]+(?:\[\d+\])?):",
    r"[A-Z][a-z][a-z] [ \d]\d \d\d:\d\d:\d\d kernel:",
    r"[A-Z][a-z][a-z] [A-Z][a-z][a-z] [ \d]\d \d\d:\d\d:\d\d \d{4} \w+\.\w+ (?:kernel|[\w.@/-]+(?:\[\d+\])?):",
    r"[^\s@]*+@\S*?[#$] ",  # shell prompt
)
_LOOP = "(?:" + "|".join(_PREFIX_ITEMS) + ")*+"
# A logcat line of a handled exception: W priority or the System.err tag.
_HANDLED_TAG = r"(?>(?:W[ /]|[VDIEFA][ /](?=System\.err))[^:\uFE55\n]*?[:\uFE55])"

# How a header's message starts (a superset of the rules' own anchors).
_KERNEL = (
    r"BUG[: ]|WARNING: |Unable to handle|CPU \d+ Unable|general protection|Oops|invalid opcode|divide error"
    r"|stack segment|double fault|alignment check|Internal error|kernel BUG|watchdog: |rcu: |INFO: |UBSAN: "
    r"|refcount_t: |ODEBUG: |unreferenced object|kmemleak: |\[ (?:INFO|BUG): |Kernel panic"
    r"|Unhandled |NMI watchdog|page dumped because: VM_BUG|\"\w+(?: Abort)?\" handler, esr|data abort|prefetch abort"
    r"|undefined instruction|not used|software interrupt"
)
_USER = (
    r"\*\*\* \*\*\*|pid: \d|Fatal signal|FATAL EXCEPTION|Exception in thread|ANR |traps: |do_page_fault\(\)"
    r"|[^\s\[]*+\[(?:[^\s\[]*+\[)?\d+\][ :]|\S++ invoked oom-killer:"  # comm[pid]: ..., comm invoked oom-killer
)
_JAVA = r"(?:Exception |Caused by:? )?(?:[a-z_$][\w$]*+\.)+[A-Z]"
_STARTS = f"(?:{_KERNEL}|{_USER})"
# A logcat line at W priority or from System.err, read first: after its tag only a kernel or native
# header counts (the atomic group keeps re from reading the line a second time the other way).
_HANDLED_LINE = r"(?:\d[\d:.\- \t]*+)?(?:W[ /]|[VDIEFA][ /]System\.err)[^:\uFE55\n]*+[:\uFE55]"
_BODY = f"(?>({_HANDLED_LINE})|)(?(1){_LOOP}{_STARTS}|{_LOOP}(?:{_STARTS}|{_JAVA}|{_HANDLED_TAG}{_LOOP}{_STARTS}))"

GATE = re.compile(r"\n" + _BODY)  # a header line after a newline (re scans for the newline at C speed)
GATE_FIRST = re.compile(_BODY)  # the same for the log's first line

# Words of the rules that match anywhere in a line (kernel.py: hard lockup, panic, watchdog, OOM kill).
ANYWHERE = ("Kernel panic - not syncing", "Watchdog detected hard LOCKUP", "ut of memory", "WDT reset", "atchdog")


def line_starts(text: str) -> list[int]:
    """Offsets of the lines of ``text`` that may start a crash report, in order, once each."""
    starts: set[int] = set()
    if GATE_FIRST.match(text):
        starts.add(0)
    starts.update(m.start() + 1 for m in GATE.finditer(text))
    for word in ANYWHERE:
        pos = text.find(word)
        while pos >= 0:
            start = text.rfind("\n", 0, pos) + 1
            starts.add(start)
            end = text.find("\n", pos)
            if end < 0:
                break
            pos = text.find(word, end)
    return sorted(starts)
