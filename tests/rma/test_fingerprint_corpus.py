"""The crash corpus (tests/data/crashes): every log its expected title; one fault per bug, never two bugs in one.

The corpus is 213 console logs written from what kernel, Android and user-space crash reports look
like (x86-64, ARM, ARM64, MIPS), each with its bug and expected title in index.tsv. The figures the
issue asks for are asserted here and printed by benchmarks/fingerprint.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lab.rma.fingerprint import fingerprint_log

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from fingerprint import CORPUS, filed, load_index, pairwise  # noqa: E402

CASES = load_index(CORPUS)


def test_the_corpus_is_large_and_covers_every_family_and_architecture() -> None:
    assert len(CASES) >= 150
    names = " ".join(c.name for c in CASES)
    for arch in ("x86-", "arm-", "arm64-", "mips-", "android-"):
        assert arch in names
    kinds = {fingerprint_log(c.text).kind for c in CASES if c.bug}
    assert kinds >= {
        "oops", "kasan", "kmsan", "kcsan", "ubsan", "warning", "lockdep", "rcu-stall", "hung-task",
        "lockup", "memory-leak", "bug", "panic", "watchdog", "oom", "segfault", "tombstone", "java", "anr",
    }  # fmt: skip
    assert sum(c.bug is None for c in CASES) >= 3  # logs with no crash
    assert sum(c.corrupted for c in CASES) >= 3  # truncated reports


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_log_gets_its_expected_title(case) -> None:  # type: ignore[no-untyped-def]
    fp = fingerprint_log(case.text)
    if case.title is None:
        assert fp is None, f"{case.name}: a log without a crash was titled {fp.title!r}"
        return
    assert fp is not None, f"{case.name}: no crash found"
    assert (fp.title, fp.corrupted) == (case.title, case.corrupted)


def test_pairwise_precision_and_recall_hold_on_the_corpus() -> None:
    fps = [fingerprint_log(c.text) for c in CASES]
    precision, recall, _, same_bug = pairwise(CASES, fps, "primary")
    filed_precision, filed_recall, _, _ = pairwise(CASES, fps, "filed")
    assert same_bug > 300
    assert precision >= 0.98 and filed_precision >= 0.98
    # Primary titles alone: the corpus keeps one bug seen as KASAN and as a GPF, an ARM segfault that
    # names no library and truncated reports, which must not share a title with complete ones.
    assert recall >= 0.80
    assert filed_recall >= 0.90  # ... and filing links them through alternative titles


def test_filing_links_a_kasan_report_and_a_gpf_of_one_bug_but_never_a_truncated_report() -> None:
    by_name = {c.name: c for c in CASES}
    names = [
        "x86-kasan-uaf-igmp_start_timer.log",
        "x86-gpf-igmp_start_timer-nokasan.log",
        "x86-null-dvb_demux_feed.log",
        "arm-truncated-null.log",
    ]
    faults = filed([fingerprint_log(by_name[n].text) for n in names])
    assert faults[0] == faults[1]
    assert faults[3] not in (faults[0], faults[2])
