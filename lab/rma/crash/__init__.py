"""Crash reports in console logs: find the first one, title it, name its guilty frame.

Fingerprint algorithm v3 (see :mod:`lab.rma.fingerprint`) is built from this package:

* :mod:`~lab.rma.crash.lines` -- console lines without syslog/journal/logcat prefixes, timestamps,
  printk callers, quote markers, colour codes;
* :mod:`~lab.rma.crash.gate` -- the lines that may start a report, picked in one regex pass;
* :mod:`~lab.rma.crash.finder` -- the first report of a log and its own lines;
* :mod:`~lab.rma.crash.kernel`, :mod:`~lab.rma.crash.userspace` -- title rules per family;
* :mod:`~lab.rma.crash.frames` -- call-trace frames, faulting PC and the guilty frame, with the skip
  list kept as data in ``skip_frames_v3.txt``.

Example::

    >>> r = find_report("[ 7.1] BUG: kernel NULL pointer dereference, address: 0000000000000008\\n"
    ...                 "[ 7.1] RIP: 0010:dvb_demux_feed+0x1c/0x40\\n")
    >>> (r.title, r.guilty, r.corrupted)
    ('BUG: unable to handle kernel NULL pointer dereference in dvb_demux_feed', 'dvb_demux_feed', False)
"""

from lab.rma.crash.finder import find_report
from lab.rma.crash.report import CrashReport

__all__ = ["CrashReport", "find_report"]
