"""RMA database benchmark: filing throughput with dedup, listings with a million occurrences, size on disk.

    python benchmarks/rma.py                       # both backends, 1M occurrences (several minutes)
    python benchmarks/rma.py --rows 100000 --backends sqlite

1. Filing throughput (occurrences/s through ``RmaStore.file``: fingerprint, dedup to 20 bugs,
   upserts, counters, audit) with 1 filer and 16 filer processes, fresh database per run.
   Baseline in the same run: one bare ``INSERT`` + ``COMMIT`` per row into a one-table database on
   the same backend (the floor for one durable transaction per occurrence).
2. A million occurrences bulk-loaded (executemany on SQLite, COPY on PostgreSQL; not through the
   filing path), then: a device's whole history, a fault's newest 100 occurrences (the biggest
   fault and a typical one), the fault list, through the same query code the CLI uses.
   Baseline in the same run: the device query forced to a full scan (SQLite ``NOT INDEXED``,
   PostgreSQL with index scans off).
3. Database size on disk at that point.

Prints a markdown report (medians of ``--runs`` runs) for benchmarks/rma.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import platform
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402

from lab.rma import FaultReport, RmaStore, queries  # noqa: E402
from lab.rma.db import make_engine, migrate  # noqa: E402
from lab.rma.fingerprint import ALGORITHM_VERSION, title_hash  # noqa: E402
from lab.rma.pgtemp import TempPostgres, available  # noqa: E402

BUGS = 20
FUNCS = [f"stb_func_{i}" for i in range(BUGS)]


def oops_log(bug: int, j: int) -> str:
    """A console log with an Oops in bug's function; addresses, PIDs and times vary with j."""
    f = FUNCS[bug]
    return "\n".join(
        [
            f"[ {100 + j % 900}.{j % 999999:06d}] Unable to handle kernel NULL pointer dereference at virtual "
            f"address {j % 4096:08x}",
            f"[ {100 + j % 900}.000001] Internal error: Oops: 17 [#1] PREEMPT SMP ARM",
            f"[ {100 + j % 900}.000002] CPU: {j % 4} PID: {j % 30000} Comm: stb_app Tainted: G O 4.19.150 #1",
            f"[ {100 + j % 900}.000003] PC is at {f}+0x{j % 256:x}/0x200 [stb_mod]",
            f"[ {100 + j % 900}.000004] [<bf0{j % 9999:05x}>] ({f} [stb_mod]) from [<c0100000>] "
            f"(caller_{bug}+0x1c/0x80)",
            f"[ {100 + j % 900}.000005] [<c0100000>] (caller_{bug}) from [<c0200000>] (do_vfs_ioctl+0xa4/0x7c0)",
            f"[ {100 + j % 900}.000006] Kernel panic - not syncing: Fatal exception",
        ]
    )


def report(j: int, worker: int) -> FaultReport:
    return FaultReport(
        rig=f"stb-{j % 8}",
        device_serial=f"SN-{j % 50:05d}",
        model="STB-4K-X1",
        test_id=f"scenarios/test_zap.py::test_zap[{j % 7}]",
        firmware_version=f"2.{j % 12}.0",
        seed=j,
        console_log=oops_log(j % BUGS, j),
        occurrence_key=f"w{worker}-{j}",
        started=1_780_000_000 + j,
    )


def _filer(url: str, root: str, worker: int, count: int, go: object, out: object) -> None:
    store = RmaStore(url, artifact_root=Path(root) / "artifacts", journal_path=Path(root) / f"j{worker}.jsonl")
    store.ensure_schema()
    go.wait(120)  # type: ignore[attr-defined]
    for j in range(count):
        store.file(report(worker * 100_000 + j, worker))
    out.put(worker)  # type: ignore[attr-defined]


def filing_throughput(url: str, root: Path, filers: int, per_filer: int) -> float:
    """Occurrences per second through the filing path with ``filers`` processes."""
    RmaStore.open(url, artifact_root=root / "artifacts").close()
    ctx = multiprocessing.get_context("fork")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_filer, args=(url, str(root), w, per_filer, go, out)) for w in range(filers)]
    for p in procs:
        p.start()
    time.sleep(0.5 + 0.05 * filers)  # all connected and migrated-check done
    t0 = time.perf_counter()
    go.set()
    for _ in procs:
        out.get(timeout=1200)
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    return filers * per_filer / elapsed


def _bare_insert_worker(url: str, n: int, tag: int, go: object, out: object) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    go.wait(120)  # type: ignore[attr-defined]
    with engine.connect() as c:
        for i in range(n):
            c.execute(text("INSERT INTO bare (k, v) VALUES (:k, :v)"), {"k": f"{tag}-{i}", "v": "x" * 60})
            c.commit()
    out.put(tag)  # type: ignore[attr-defined]


def bare_insert_throughput(url: str, filers: int, per_filer: int) -> float:
    """Baseline: one INSERT + COMMIT per row into one table."""
    engine = make_engine(url)
    with engine.begin() as c:
        c.execute(text("CREATE TABLE bare (k VARCHAR(40) PRIMARY KEY, v TEXT)"))
    engine.dispose()
    raw_url = url if "://" in url else f"sqlite:///{url}"
    ctx = multiprocessing.get_context("fork")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_bare_insert_worker, args=(raw_url, per_filer, w, go, out)) for w in range(filers)]
    for p in procs:
        p.start()
    time.sleep(0.3)
    t0 = time.perf_counter()
    go.set()
    for _ in procs:
        out.get(timeout=600)
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    return filers * per_filer / elapsed


# --- a million occurrences ----------------------------------------------------------------------


def bulk_load(url: str, rows: int) -> dict[str, object]:
    """Fill the schema with ``rows`` occurrences (and their test runs), skewed over faults and devices."""
    engine = make_engine(url)
    migrate(engine)
    rng = random.Random(6)
    n_dev, n_rig, n_fw, n_fault = max(10, rows // 1000), 24, 40, max(20, rows // 500)
    now = dt.datetime(2026, 1, 1)
    devices = [(i + 1, f"SN-{i:07d}", "STB-4K-X1" if i % 3 else "STB-HD-2", now) for i in range(n_dev)]
    rigs = [(i + 1, f"rig-{i:03d}", "STB-4K-X1", now) for i in range(n_rig)]
    from lab.firmware.version import version_key

    fws = [(i + 1, f"2.{i}.0", version_key(f"2.{i}.0"), f"b{i}", "", now) for i in range(n_fw)]
    # Fault 1 is the big one (10% of all occurrences); the rest share the remainder.
    faults = [
        (
            i + 1,
            f"NULL pointer dereference in func_{i}",
            "oops",
            "open",
            False,
            now,
            now,
            0,
            ALGORITHM_VERSION,
            now,
            now,
        )
        for i in range(n_fault)
    ]
    sigs = [
        (
            i + 1,
            i + 1,
            ALGORITHM_VERSION,
            title_hash(f"NULL pointer dereference in func_{i}"),
            faults[i][1],
            "primary",
            now,
        )
        for i in range(n_fault)
    ]
    runs, occs = [], []
    counts = [0] * n_fault
    for j in range(rows):
        fid = 1 if j % 10 == 0 else rng.randrange(2, n_fault + 1)
        counts[fid - 1] += 1
        dev, rig, fw = rng.randrange(1, n_dev + 1), rng.randrange(1, n_rig + 1), rng.randrange(1, n_fw + 1)
        seen = now + dt.timedelta(seconds=j * 7)
        runs.append(
            (
                j + 1,
                f"bulk-{j}",
                rig,
                dev,
                fw,
                f"scenarios/test_zap.py::test_zap[{j % 13}]",
                "{}",
                str(j),
                None,
                "failed",
                seen,
                seen,
            )
        )
        occs.append(
            (
                j + 1,
                f"bulk-{j}",
                fid,
                j + 1,
                dev,
                rig,
                fw,
                seen,
                faults[fid - 1][1],
                sigs[fid - 1][3],
                None,
                None,
                None,
                False,
                seen,
            )
        )
    faults = [f[:7] + (counts[i],) + f[8:] for i, f in enumerate(faults)]
    tables = [
        ("devices", "id, serial, model, created_at", devices),
        ("rigs", "id, name, model, created_at", rigs),
        ("firmware_builds", "id, version, version_key, build_id, sha256, created_at", fws),
        (
            "faults",
            "id, title, kind, status, regression, first_seen, last_seen, occurrence_count, "
            "algorithm_version, created_at, updated_at",
            faults,
        ),
        ("fault_signatures", "id, fault_id, algorithm_version, hash, title, role, created_at", sigs),
        (
            "test_runs",
            "id, run_key, rig_id, device_id, firmware_id, test_id, params, seed, network_profile, "
            "outcome, started, ended",
            runs,
        ),
        (
            "occurrences",
            "id, occurrence_key, fault_id, test_run_id, device_id, rig_id, firmware_id, seen_at, title, "
            "signature_hash, symptom, message, excerpt, regression, filed_at",
            occs,
        ),
    ]
    t0 = time.perf_counter()
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            for name, cols, data in tables:
                with cur.copy(f"COPY {name} ({cols}) FROM STDIN") as cp:
                    for row in data:
                        cp.write_row(row)
            for name, _, _ in tables:
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))")
            raw.commit()
            cur.execute("ANALYZE")
            raw.commit()
        finally:
            raw.close()
    else:
        with engine.begin() as c:
            for name, cols, data in tables:
                marks = ", ".join("?" for _ in cols.split(","))
                c.exec_driver_sql(f"INSERT INTO {name} ({cols}) VALUES ({marks})", data)
        with engine.begin() as c:
            c.exec_driver_sql("ANALYZE")
        raw = engine.raw_connection()  # outside any transaction: fold the WAL into the file before sizing
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    load_s = time.perf_counter() - t0
    engine.dispose()
    return {
        "rows": rows,
        "devices": n_dev,
        "faults": n_fault,
        "big_fault": counts[0],
        "load_s": load_s,
        "typical_fault": 2,
    }


def _median_ms(fn, repeat: int = 15) -> float:
    fn()  # warm the cache: a lab database is in use, not cold
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def query_times(url: str, info: dict[str, object]) -> dict[str, float]:
    store = RmaStore(url)
    out: dict[str, float] = {}
    serial = "SN-0000007"
    with store.session() as s:
        out["device_rows"] = len(queries.device_history(s, serial))
        out["device_history_ms"] = _median_ms(lambda: queries.device_history(s, serial))
        out["big_fault_rows"] = len(queries.list_occurrences(s, fault_id=1, limit=100))
        out["big_fault_100_ms"] = _median_ms(lambda: queries.list_occurrences(s, fault_id=1, limit=100))
        out["typical_fault_100_ms"] = _median_ms(lambda: queries.list_occurrences(s, fault_id=2, limit=100))
        out["fault_detail_ms"] = _median_ms(lambda: queries.get_fault(s, 2))
        out["fault_list_ms"] = _median_ms(lambda: queries.list_faults(s, limit=100))
        dev_id = s.execute(text("SELECT id FROM devices WHERE serial = :s"), {"s": serial}).scalar()
        if store.engine.dialect.name == "postgresql":
            s.execute(text("SET enable_indexscan = off"))
            s.execute(text("SET enable_bitmapscan = off"))
            sql = "SELECT * FROM occurrences WHERE device_id = :d ORDER BY seen_at DESC"
        else:
            sql = "SELECT * FROM occurrences NOT INDEXED WHERE device_id = :d ORDER BY seen_at DESC"
        out["baseline_full_scan_ms"] = _median_ms(lambda: s.execute(text(sql), {"d": dev_id}).all(), repeat=5)
        s.rollback()
    store.close()
    return out


def size_bytes(url: str) -> int:
    if "://" not in url:
        return sum(p.stat().st_size for p in Path(url).parent.glob(Path(url).name + "*"))
    engine = make_engine(url)
    with engine.connect() as c:
        size = c.execute(text("SELECT pg_database_size(current_database())")).scalar()
    engine.dispose()
    return int(size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--single", type=int, default=300, help="filings by the single filer")
    ap.add_argument("--per-filer", type=int, default=40, help="filings by each of the 16 filers")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--json", type=Path, help="also write raw figures here")
    ap.add_argument("--no-filing", action="store_true", help="only the million-occurrence part")
    args = ap.parse_args()
    # A SIGTERM (timeout, Ctrl-C from a launcher) still runs the finally below: no cluster left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    backends = args.backends.split(",")
    pg = None
    if "postgresql" in backends:
        if not available():
            print("PostgreSQL binaries missing: skipping that backend", file=sys.stderr)
            backends.remove("postgresql")
        else:
            pg = TempPostgres()
            pg.init()
            pg.start()
    results: dict[str, dict[str, object]] = {}
    work = Path(tempfile.mkdtemp(prefix="stblab-rma-bench-"))
    try:
        for be in backends:

            def fresh(tag: str, be: str = be) -> str:
                if be == "sqlite":
                    d = work / f"{tag}-{time.monotonic_ns()}"
                    d.mkdir()
                    return str(d / "rma.sqlite")
                assert pg is not None
                return pg.create_db()

            r: dict[str, object] = {}
            for filers, per in () if args.no_filing else ((1, args.single), (16, args.per_filer)):
                vals = [filing_throughput(fresh("f"), work, filers, per) for _ in range(args.runs)]
                base = [bare_insert_throughput(fresh("b"), filers, per) for _ in range(args.runs)]
                r[f"file_{filers}"] = statistics.median(vals)
                r[f"bare_{filers}"] = statistics.median(base)
                print(
                    f"{be}: {filers} filer(s): {statistics.median(vals):.0f} occ/s (bare insert "
                    f"{statistics.median(base):.0f}/s)",
                    file=sys.stderr,
                    flush=True,
                )
            url = fresh("million")
            info = bulk_load(url, args.rows)
            print(f"{be}: loaded {args.rows} in {info['load_s']:.0f} s", file=sys.stderr, flush=True)
            r.update(info)
            r.update(query_times(url, info))
            r["size_bytes"] = size_bytes(url)
            results[be] = r
            print(f"{be}: {json.dumps(r)}", file=sys.stderr, flush=True)
    finally:
        if pg is not None:
            pg.cleanup()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(render(results, args))


def render(results: dict[str, dict[str, object]], args: argparse.Namespace) -> str:
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared, noisy), Python {platform.python_version()}; "
        f"medians of {args.runs} runs (filing) and 15 runs (queries, warm cache).",
        "",
        "| backend | filers | filing occ/s (dedup) | bare INSERT+COMMIT rows/s (baseline) | ratio |",
        "|---|---|---|---|---|",
    ]
    for be, r in results.items():
        for n in (1, 16) if "file_1" in r else ():
            f, b = float(r[f"file_{n}"]), float(r[f"bare_{n}"])  # type: ignore[arg-type]
            lines.append(f"| {be} | {n} | {f:.0f} | {b:.0f} | {f / b:.2f} |")
    lines += [
        "",
        f"With {args.rows:,} occurrences stored:",
        "",
        "| backend | device history (rows) | fault's newest 100, biggest fault | typical fault | fault detail | "
        "fault list | baseline: device query by full scan | size on disk | bulk load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for be, r in results.items():
        lines.append(
            f"| {be} | {r['device_history_ms']:.1f} ms ({r['device_rows']}) | {r['big_fault_100_ms']:.1f} ms "
            f"(of {r['big_fault']:,}) | {r['typical_fault_100_ms']:.1f} ms | {r['fault_detail_ms']:.1f} ms | "
            f"{r['fault_list_ms']:.1f} ms | {r['baseline_full_scan_ms']:.0f} ms | "
            f"{int(r['size_bytes']) / 2**20:.0f} MiB | {r['load_s']:.0f} s |"  # type: ignore[arg-type]
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
