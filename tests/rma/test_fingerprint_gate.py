"""The line gate (lab.rma.crash.gate) never hides a header the title rules would read.

The gate is a speed-up: one regular-expression pass picks the lines that may start a report, so
the finder no longer cleans and classifies every line holding a trigger word. Its one duty is to
be wider than the rules: every line the slow path (trigger word, handled-exception rule, clean,
classify) takes for a header must be among the lines the gate lets through. Checked on every line
of both corpora (513 logs written here or by others, about 700 header lines) and on header lines in every carrier.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.rma.crash import finder, gate

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from fingerprint import CORPUS, PUBLIC, load_index  # noqa: E402

CASES = load_index(CORPUS) + load_index(PUBLIC)


def _slow_header_lines(text: str) -> set[int]:
    return {start for start, *_ in finder._headers_by_trigger(finder._Log(text))}


def test_the_gate_lets_through_every_header_line_of_both_corpora() -> None:
    missed = []
    checked = 0
    for case in CASES:
        log = finder._Log(case.text)
        if "\x1b" in log.text:
            continue  # colour codes: the finder reads such logs the slow way
        slow = _slow_header_lines(case.text)
        checked += len(slow)
        missed += [(case.name, log.text[s : s + 80]) for s in slow - set(gate.line_starts(log.text))]
    assert checked > 600
    assert not missed, missed[:5]


HEADERS = [
    "BUG: kernel NULL pointer dereference, address: 0000000000000008",
    "Unable to handle kernel paging request at virtual address dead000000000108",
    "Internal error: Oops: 96000005 [#1] PREEMPT SMP",
    "WARNING: CPU: 1 PID: 77 at net/core/dev.c:123 dev_watchdog+0x1c/0x40",
    "general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000 [#1]",
    "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [kworker/0:1:77]",
    "NMI watchdog: Watchdog detected hard LOCKUP on cpu 1",
    "INFO: task dvbplayer:812 blocked for more than 120 seconds.",
    "Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b",
    "Out of memory: Killed process 812 (dvbplayer) total-vm:1000kB",
    "dvbplayer[812]: segfault at 0 ip 00007f00 sp 00007ffc error 4 in libavcodec.so.58[7f00+1e000]",
    "Fatal signal 11 (SIGSEGV), code 1, fault addr 0x0 in tid 812 (player), pid 812 (com.acme.tv)",
    "*** *** *** *** *** *** *** *** *** *** *** *** *** *** *** ***",
    "FATAL EXCEPTION: main",
    "java.lang.NullPointerException: Attempt to invoke virtual method",
    "ANR in com.acme.tv",
]
CARRIERS = [
    "{}",
    "[   12.345678] {}",
    "<4>[   12.345678][  T123] {}",
    "[Thu May 21 10:00:00 2026] {}",
    "Apr  2 10:00:00 stb kernel: [   12.3] {}",
    "2026-05-21T10:00:00.123456+00:00 stb kernel: {}",
    "> > [   12.3] {}",
    "root@stb:~# {}",
    "kern  :emerg : [   12.3] {}",
    "05-21 10:00:00.123  1234  1250 E AndroidRuntime: {}",
    "05-21 10:00:00.123  1234  1250 F DEBUG   : {}",
    "E/AndroidRuntime( 1234): {}",
    "2021-09-17 00:32:31.156 1234-1250/com.acme.tv A/libc: {}",
    "  \t[   12.3] {}\r",
]


@pytest.mark.parametrize("carrier", CARRIERS)
def test_the_gate_lets_through_headers_in_every_carrier(carrier: str) -> None:
    for header in HEADERS:
        line = carrier.format(header)
        text = f"boot\n{line}\nmore\n"
        slow = _slow_header_lines(text)
        assert slow, f"not a header line: {line!r}"
        assert slow <= set(gate.line_starts(text)), line
        assert gate.line_starts(line) == [0] or not _slow_header_lines(line), line  # as the first line too


def test_the_gate_drops_handled_exceptions_and_app_lines_but_not_native_crashes_at_w() -> None:
    text = (
        "[   12.3] stb-app: WARNING: buffer low 5, BUG count 0, Error: none\n"
        "05-21 10:00:00.118  2301  2377 W System.err: java.io.IOException: timeout\n"
        "05-21 10:00:00.118  2301  2377 W System.err: \tat com.acme.Net.get(Net.java:12)\n"
        "05-21 10:00:00.118  2301  2377 W libc    : Fatal signal 6 (SIGABRT), code -1 in tid 2377 (Net)\n"
    )
    assert gate.line_starts(text) == [text.index("05-21 10:00:00.118  2301  2377 W libc")]


PREFIXES = [
    "[   12.345678] ", "[  T123] ", "[    C1] ", "<4>", "> ", ">> ", "[Thu May 21 10:00:00 2026] ", "[May21 10:00] ",
    "[  +0.000123] ", "Apr  2 10:00:00 stb kernel: ", "2026-05-21T10:00:00+00:00 stb kernel: ", "kernel: ",
    "kern  :emerg : ", "root@stb:~# ", "** 3 printk messages dropped ** ", "\x1b[31m", "\t", "  ", "[ ] ",
    "05-21 10:00:00.123  1234  1250 E AndroidRuntime: ", "F/DEBUG   ( 1234): ", "A/libc: ",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PREFIXES), max_size=4), st.sampled_from(HEADERS), st.sampled_from(["\n", "\r\n"]))
def test_the_gate_lets_through_a_header_after_any_mix_of_prefixes(prefixes: list[str], header: str, end: str) -> None:
    text = f"boot{end}{''.join(prefixes)}{header}{end}more{end}"
    slow = _slow_header_lines(text)
    assert slow <= set(gate.line_starts(finder._Log(text).text)), repr(text)
