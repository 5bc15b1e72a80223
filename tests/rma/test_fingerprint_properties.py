"""Property-based tests of the crash report finder (Hypothesis).

* it never raises, whatever the text (console noise, binary garbage, pieces of crash reports);
* how a console carried the lines (kernel timestamps, ``dmesg -T`` dates, syslog and journal
  prefixes, printk callers, CRLF, colour codes, quote markers) never changes a title.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.rma.crash import find_report
from lab.rma.fingerprint import fingerprint_log

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from fingerprint import CORPUS, load_index  # noqa: E402

REPORTS = [c for c in load_index(CORPUS) if c.bug is not None and not c.name.startswith("v-")]

# Pieces of real report lines: the finder must survive any mix and cut of them.
FRAGMENTS = [
    "BUG: ", "KASAN: use-after-free in ", "WARNING: CPU: 0 PID: 1 at ", "Call Trace:", " func+0x1c/0x40",
    "PC is at ", "pc : ", "RIP: 0010:", "Kernel panic - not syncing: ", "Internal error: Oops: 17 [#1]",
    "[<c0123456>] (f) from [<c0123457>] (g+0x1/0x2)", "*** *** *** *** *** ***", "#00 pc 0000 /lib/x.so (f+1)",
    "FATAL EXCEPTION: main", "Caused by: java.lang.X", "\tat a.B.c(B.java:1)", "ANR in ", "segfault at ",
    "stack backtrace:", "backtrace:", "unreferenced object 0x1 (size 8):", "[  T12]", "[    C1]", "\x1b[31m",
    "\r", "\n", "\x00", ">>> ", " <<<", "INFO: task x:1 blocked for more than 1 seconds.", "UBSAN: ", "?",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_the_finder_never_raises_on_any_text(text: str) -> None:
    find_report(text)
    fingerprint_log(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=20)), max_size=60))
def test_the_finder_never_raises_on_pieces_of_crash_reports(pieces: list[str]) -> None:
    text = "".join(pieces)
    report = find_report(text)
    if report is not None:
        assert report.title and isinstance(report.corrupted, bool)


_MON = ["Jan", "Feb", "May", "Dec"]


def _carrier(draw: st.DrawFn, with_caller: bool = True) -> object:
    """One way a console carries its lines, as a function of (message, line number)."""
    kinds = ["ts", "dmesg-T", "syslog", "journal", "caller", "logcat", "quoted", "bare"]
    kind = draw(st.sampled_from(kinds if with_caller else [k for k in kinds if k != "caller"]))
    ts = draw(st.floats(min_value=0, max_value=99999, allow_nan=False))
    mon = draw(st.sampled_from(_MON))
    host = draw(st.sampled_from(["stb-4k", "lab-rig-2", "box"]))
    caller = draw(st.sampled_from(["T1", "T812", "C0", "C3"]))

    def carry(msg: str, i: int) -> str:
        stamp = f"[{ts + i * 0.0001:12.6f}]"
        return {
            "ts": f"{stamp} {msg}",
            "dmesg-T": f"[Thu {mon} 21 10:14:{i % 60:02d} 2026] {msg}",
            "syslog": f"{mon} 21 10:14:{i % 60:02d} {host} kernel: {stamp} {msg}",
            "journal": f"2026-05-21T10:14:{i % 60:02d}.123456+0200 {host} kernel: {msg}",
            "caller": f"{stamp}[{caller:>6}] {msg}",
            "logcat": f"05-21 10:14:{i % 60:02d}.118  2301  2377 F DEBUG   : {msg}",
            "quoted": f"> {msg}",
            "bare": msg,
        }[kind]

    return carry


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(REPORTS), st.data())
def test_timestamps_prefixes_line_ends_and_colour_never_change_a_title(case, data) -> None:  # type: ignore[no-untyped-def]
    expected = fingerprint_log(case.text)
    assert expected is not None
    # A log whose lines carry printk callers keeps them (they tell interleaved reports apart).
    callers = re.compile(r"^\[\s*\d+\.\d+\](\[\s*[TC]\d+\]) ")
    has_callers = bool(callers.match(case.text))
    carry = data.draw(st.composite(lambda draw: _carrier(draw, not has_callers))())
    crlf = data.draw(st.booleans())
    colour = data.draw(st.booleans())
    out = []
    for i, raw in enumerate(case.text.splitlines()):
        # the message as the kernel or program printed it, whatever carried it in the corpus
        msg = raw
        kept = callers.match(raw)
        msg = re.sub(r"^\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])? ?", "", msg)  # the corpus's own timestamp
        if case.name.startswith("android-") and " : " in msg[:60]:
            msg = msg.split(" : ", 1)[1] if msg[:2].isdigit() else msg
        if kept:
            msg = f"{kept.group(1)} {msg}"
        line = carry(msg, i)  # type: ignore[operator]
        if colour and i % 3 == 0:
            line = f"\x1b[1;3{i % 8}m{line}\x1b[0m"
        out.append(line)
    text = ("\r\n" if crlf else "\n").join(out) + "\n"
    got = fingerprint_log(text)
    assert got is not None, case.name
    assert (got.title, got.corrupted, got.hash) == (expected.title, expected.corrupted, expected.hash), case.name
