"""A filing process for the concurrency tests (run as a separate OS process, not imported by pytest).

    python filer_proc.py hang URL ROOT KEY     -> stops inside the transaction

:func:`batch` (run in forked processes): worker W files occurrences ``occ-J`` for J in its group
(two workers share each group, so every occurrence is filed twice, concurrently). Occurrence J
is bug J % 4 on rig J % 3, device J % 5 and firmware 2.J%6.0: one bug spans rigs, devices, firmware.
``hang``: prints ``INSIDE`` after inserting the occurrence row, before commit, then sleeps so the
parent can SIGKILL it mid-transaction.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event

from lab.rma import FaultReport, RmaStore

DATA = Path(__file__).parent / "data"
BUGS = [
    ["arm_oops_decoder.log", "arm_oops_decoder_2.log", "x86_oops_decoder.log"],
    ["oom_stb_app.log", "oom_stb_app_2.log"],
    ["segfault_dvbd.log"],
    ["softlockup.log"],
]


def report(j: int) -> FaultReport:
    variants = BUGS[j % 4]
    log = (DATA / variants[(j // 4) % len(variants)]).read_text()
    return FaultReport(
        rig=f"stb-{'abc'[j % 3]}",
        device_serial=f"SN-{j % 5:04d}",
        model="STB-4K-X1",
        test_id=f"scenarios/test_zap.py::test_zap[{j}]",
        firmware_version=f"2.{j % 6}.0",
        seed=j,
        console_log=log,
        occurrence_key=f"occ-{j}",
        started=1_780_000_000 + j,
    )


def batch(url: str, root: Path, worker: int, size: int, go: Any, results: Any) -> None:
    """File this worker's share once ``go`` is set; put each FilingResult (as a dict) on ``results``."""
    store = RmaStore(url, artifact_root=root / "artifacts", journal_path=root / f"journal-{os.getpid()}.jsonl")
    group = worker // 2
    order = list(range(group * size, group * size + size))
    if worker % 2:
        order.reverse()  # the partner files the same occurrences in the other order
    go.wait(60)
    out = []
    for j in order:
        out.append({"j": j, **store.file(report(j)).as_dict()})
    results.put(out)
    store.close()


def main() -> None:
    mode, url, root = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    store = RmaStore(url, artifact_root=root / "artifacts", journal_path=root / f"journal-{os.getpid()}.jsonl")
    if mode == "hang":
        key = sys.argv[4]

        @event.listens_for(store.engine, "after_cursor_execute")
        def _hang(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            if statement.lstrip().upper().startswith("INSERT INTO OCCURRENCES"):
                print("INSIDE", flush=True)
                time.sleep(120)

        rep = report(0)
        rep.occurrence_key = key
        store.file(rep)
        print("COMMITTED", flush=True)


if __name__ == "__main__":
    main()
