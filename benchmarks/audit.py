"""What auditing every filing costs, and how long ``stblab rma audit`` takes.

Files N occurrences (one ARM Oops console log with varying addresses, 20 distinct bugs) through
``RmaStore.file`` into a fresh SQLite database, twice per run, alternating:

* ``audited``: what stblab does (every occurrence gets an ``occurrence.filed`` entry with carried
  row counters, the head is appended to the head file after each commit);
* ``baseline``: the same filing with the per-occurrence entry skipped (what filing did before:
  only new faults and regressions audited).

Then times ``verify_audit`` (chain, counters, rows, anchors) on the audited database.

    python benchmarks/audit.py --filings 1500 --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import lab.rma.filing as filing
from lab.rma import FaultReport, RmaStore

OOPS = """[  {t}.123456] Unable to handle kernel NULL pointer dereference at virtual address {addr:08x}
[  {t}.123460] pgd = c0004000
[  {t}.123470] Internal error: Oops: 17 [#1] PREEMPT SMP ARM
[  {t}.123480] PC is at bug_{bug}_submit+0x{off:x}/0x80 [decoder]
[  {t}.123490] LR is at bug_{bug}_queue+0x20/0x40 [decoder]
[  {t}.123500] Backtrace:
[  {t}.123510] [<c0{addr:06x}>] (bug_{bug}_submit) from [<c0{addr2:06x}>] (bug_{bug}_queue)
[  {t}.123520] [<c0{addr2:06x}>] (bug_{bug}_queue) from [<c0100000>] (worker_thread)
"""


def _report(i: int) -> FaultReport:
    log = OOPS.format(t=100 + i, addr=0x1000 + i * 4, addr2=0x2000 + i * 8, bug=i % 20, off=0x1C)
    return FaultReport(rig=f"stb-{i % 3}", device_serial=f"SN-{i % 7}", model="STB-4K-X1", test_id="t::zap",
                       firmware_version="2.1.0", console_log=log, occurrence_key=f"bench-{i}")  # fmt: skip


def _file_all(root: Path, n: int, audited: bool) -> tuple[float, RmaStore]:
    store = RmaStore(root / "rma.sqlite", artifact_root=root / "a", journal_path=root / "j.jsonl",
                     audit_head_path=root / "rma.audit-head")  # fmt: skip
    store.ensure_schema()
    original = filing.append_audit
    if not audited:

        def skip_filed(session, **kw):  # type: ignore[no-untyped-def]
            return None if kw.get("action") == "occurrence.filed" else original(session, **kw)

        filing.append_audit = skip_filed  # type: ignore[assignment]
    try:
        t0 = time.perf_counter()
        for i in range(n):
            store.file(_report(i))
        return n / (time.perf_counter() - t0), store
    finally:
        filing.append_audit = original


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--filings", type=int, default=1500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows: list[dict[str, float]] = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            order = [(True, Path(a)), (False, Path(b))] if run % 2 == 0 else [(False, Path(b)), (True, Path(a))]
            got: dict[str, float] = {}
            for audited, root in order:
                rate, store = _file_all(root, args.filings, audited)
                got["audited" if audited else "baseline"] = rate
                if audited:
                    t0 = time.perf_counter()
                    check = store.verify_audit()
                    got["verify_s"] = time.perf_counter() - t0
                    got["entries"] = check.entries
                    assert check.ok, check.problems
                store.close()
            got["ratio"] = got["audited"] / got["baseline"]
            rows.append(got)
            rates = f"audited {got['audited']:.0f}/s, baseline {got['baseline']:.0f}/s, ratio {got['ratio']:.2f}"
            print(f"run {run + 1}: {rates}; verify {got['entries']:.0f} entries in {got['verify_s']:.2f} s")
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(f"median: audited {med['audited']:.0f}/s, baseline {med['baseline']:.0f}/s, ratio {med['ratio']:.2f}, "
          f"verify {med['verify_s']:.2f} s for {med['entries']:.0f} entries")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"runs": rows, "median": med}, indent=2))


if __name__ == "__main__":
    main()
