"""Console lines as the kernel or the program printed them: prefixes, timestamps and noise removed.

A console line reaches us wrapped in whatever carried it: a syslog or journal prefix
(``Apr  2 10:00:00 host kernel:``), a kernel timestamp (``[   12.345678]``), a ``dmesg -T`` date
(``[Thu May 21 10:00:00 2026]``), the printk caller (``[  T123]`` for a task, ``[    C1]`` for a
CPU), a logcat prefix (``05-21 10:00:00.123  1234  1250 F DEBUG   :``), a quote marker from a mail
or bug thread (``> ``), colour codes and a carriage return. :func:`clean` removes all of them, in
any order and combination, and returns the printk caller separately so the report finder can keep
the lines of one task apart from another's.

Example::

    >>> clean("Apr  2 10:00:00 stb kernel: [   12.3][  T77] PC is at foo+0x1c/0x40\\r")
    ('PC is at foo+0x1c/0x40', 'T77')
"""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CTRL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_MON = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
# One prefix at the start of a line; clean() strips them until none is left.
_PREFIX = re.compile(
    r"(?:"
    r">+ ?"  # quote marker (mail, bug thread)
    r"|\*\* \d+ printk messages dropped \*\*"  # the console could not keep up
    r"|<\d{1,3}>"  # printk log level as /dev/kmsg or a raw console shows it
    r"|\[\s*\d+\.\d+\]"  # [   12.345678] kernel timestamp
    r"|\[ \]"  # a kernel timestamp the poster blanked out
    r"|\S+@[\w.-]+:\S*[#$] "  # a shell prompt the report was printed after (root@box:~# )
    r"|kern\s*:\s*\w+\s*:"  # LAVA/kernelci test logs: kern  :emerg :
    r"|\[\s*\+?\d+\.\d+\s*\]"  # [  +0.000123] dmesg --reltime/delta
    rf"|\[(?:{_DAY} )?{_MON} [ \d]?\d \d\d:\d\d:\d\d(?: \d{{4}})?\]"  # [Thu May 21 10:00:00 2026] dmesg -T
    rf"|\[{_MON}\d\d? \d\d:\d\d\]"  # [May21 10:00] dmesg --human
    r"|\[\s*[TC]\d+\]"  # [  T123] / [    C1] printk caller (captured below)
    # syslog (RFC 3164) and journal: date, host, maybe facility.level (busybox), tag
    rf"|{_MON} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ (?:[a-z]+\.[a-z]+ )?(?:kernel|[\w.@/-]+(?:\[\d+\])?):"
    rf"|{_MON} [ \d]\d \d\d:\d\d:\d\d kernel:"  # syslog without a host name
    rf"|{_DAY} {_MON} [ \d]\d \d\d:\d\d:\d\d \d{{4}} \w+\.\w+ (?:kernel|[\w.@/-]+(?:\[\d+\])?):"  # OpenWrt logread
    # ISO date (journalctl -o short-iso, RFC 5424 collectors, lab tools), optionally host and tag
    r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?(?: \S+ (?:kernel|[\w.@/-]+\[\d+\]):)?"
    r"|kernel:"  # a bare kernel tag
    # logcat: threadtime (05-21 10:00:00.123  1234  1250 F DEBUG   : ) and brief (F/DEBUG   ( 1234): )
    r"|(?:\d\d-\d\d )?\d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+ [VDIWEFA] [^:]*?\s*:"
    r"|[VDIWEFA]/[^(:]*?\s*\(\s*\d+\):"
    r"|[VDIWEFA]/[\w.-]+[:\uFE55] "  # Android Studio's logcat (A/libc: Fatal signal ...)
    r"|(?:\d{4}-)?\d\d-\d\d \d\d:\d\d:\d\d\.\d+\s+\d+-\d+/\S+ [VDIWEFA]/[^:\uFE55]+[:\uFE55]"  # Studio: time, pid-tid
    r"|\d+-\d+/\S+ [VDIWEFA]/[^:\uFE55]+[:\uFE55]"  # the same after an ISO date (2021-09-17 00:32:31.156 ...)
    r"|\d\d-\d\d \d\d:\d\d:\d\d\.\d+ (?=[VDIWEFA]/)"  # logcat -v time: the time, then the brief form
    r"|[VDIWEFA] [\w.]+\s*: "  # logcat -v tag (E ActivityManager: ANR in ...)
    r"|\d\d-\d\d \d\d:\d\d:\d\d\.\d+:"  # eclipse logcat time (04-08 10:27:56.763: E/AndroidRuntime(342): )
    r")[ \t]?"
)
_CALLER = re.compile(r"\[\s*([TC]\d+)\]")


def strip_noise(line: str) -> str:
    """A line without colour codes, terminal escapes, control characters and trailing spaces."""
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    return _CTRL.sub("", line).rstrip()


def clean(line: str) -> tuple[str, str | None]:
    """The message of a console line and its printk caller (``T123``/``C1``, or None).

    Strips noise and every prefix listed in the module docstring, in any order. Leading spaces
    of the message are kept out too (call-trace indentation carries no meaning here).
    """
    line = strip_noise(line).lstrip()
    caller: str | None = None
    for _ in range(8):
        m = _PREFIX.match(line)
        if m is None or m.end() == 0:
            break
        if caller is None and line.startswith("["):
            c = _CALLER.match(line)
            if c is not None and c.end() == len(m.group(0).rstrip()):
                caller = c.group(1)
        line = line[m.end() :].lstrip()
    return line, caller
