"""Web app benchmark: page latency over HTTP with a million occurrences stored, SQLite and PostgreSQL.

    python benchmarks/web.py                          # both backends, 1M occurrences (several minutes)
    python benchmarks/web.py --rows 100000 --backends sqlite

The database is bulk-loaded by ``benchmarks/rma.py``'s loader (1,000,000 occurrences and their test
runs over 1,000 devices, 40 firmware builds, 2,000 faults; fault 1 holds 10% of all occurrences).
``stblab web`` is started as its own process (uvicorn) on a loopback port; a client logs in through
the form and times each page (keep-alive connection, median of ``--repeat`` requests, after one
warm-up request), in ``--runs`` rounds, reporting the median of the round medians:

* the fault list (first page, 50 faults), filtered by firmware, by model, searched by title;
* the fault page of the biggest fault (10% of all occurrences: per-firmware table, 20 newest with
  their evidence) and of a typical one;
* the case list.

Baseline in the same run: the same data read in-process by the query code ``stblab rma`` uses
(``queries.get_fault`` / ``queries.list_faults``), without HTTP, templates or the login check: the
ratio page / baseline is what the web layer costs on top of the database.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from rma import bulk_load  # noqa: E402

from lab.emulator.testing import free_port  # noqa: E402
from lab.rma import RmaStore, queries  # noqa: E402
from lab.rma.pgtemp import TempPostgres, available  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "benchmark-password"
PAGES = {
    "fault list": "/faults",
    "fault list, firmware filter": "/faults?firmware=2.3.0",
    "fault list, title search": "/faults?q=stb_func_3",
    "fault list, model filter": "/faults?model=STB-HD-2",
    "fault page, biggest fault": "/faults/1",
    "fault page, typical": "/faults/2",
    "case list": "/cases",
}


def _median_ms(fn, repeat: int) -> float:  # noqa: ANN001
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def start_server(url: str, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cli = [sys.executable, "-m", "lab.cli", "web", "--db", url, "--artifacts", str(work / "artifacts")]
    subprocess.run(
        [*cli, "adduser", "bench", "--role", "viewer", "--password-stdin"],
        input=PASSWORD.encode(),
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    proc = subprocess.Popen([*cli, "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(base + "/login", timeout=2)
            return proc, base
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("stblab web did not start in 60 s") from None
            time.sleep(0.2)


def page_times(base: str, repeat: int) -> dict[str, float]:
    with httpx.Client(base_url=base, timeout=60) as c:
        form = c.get("/login").text
        token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        r = c.post("/login", data={"name": "bench", "password": PASSWORD, "csrf": token, "next": "/faults"})
        assert r.status_code == 303, r.text

        def get(path: str) -> None:
            resp = c.get(path)
            assert resp.status_code == 200, (path, resp.status_code)

        return {name: _median_ms(lambda p=path: get(p), repeat) for name, path in PAGES.items()}


def baseline_times(url: str, repeat: int) -> dict[str, float]:
    store = RmaStore(url)
    with store.session() as s:
        out = {
            "baseline: get_fault(1) in-process": _median_ms(lambda: queries.get_fault(s, 1), repeat),
            "baseline: list_faults(50) in-process": _median_ms(lambda: queries.list_faults(s, limit=50), repeat),
        }
    store.close()
    return out


def vacuum(url: str) -> None:
    """VACUUM ANALYZE a bulk-loaded PostgreSQL database (COPY leaves no visibility map behind)."""
    from lab.rma.db import make_engine

    engine = make_engine(url)
    with engine.connect() as c:
        c.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3, help="rounds; the median of the round medians is reported")
    ap.add_argument("--repeat", type=int, default=15, help="requests per page per round")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--json", type=Path, help="also write raw figures here")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    backends = args.backends.split(",")
    pg = None
    if "postgresql" in backends:
        if available():
            pg = TempPostgres()
            pg.init()
            pg.start()
        else:
            print("PostgreSQL binaries missing: skipping that backend", file=sys.stderr)
            backends.remove("postgresql")
    work = Path(tempfile.mkdtemp(prefix="stblab-web-bench-"))
    results: dict[str, dict[str, object]] = {}
    try:
        for be in backends:
            url = str(work / "rma.sqlite") if be == "sqlite" else pg.create_db()  # type: ignore[union-attr]
            info = bulk_load(url, args.rows)
            if be == "postgresql":  # what autovacuum does to a live database: visibility map for index-only scans
                vacuum(url)
            print(f"{be}: loaded {args.rows} occurrences in {info['load_s']:.0f} s", file=sys.stderr, flush=True)
            proc, base = start_server(url, work)
            try:
                rounds = []
                for _ in range(args.runs):
                    rounds.append({**page_times(base, args.repeat), **baseline_times(url, args.repeat)})
            finally:
                proc.terminate()
                proc.wait(10)
            r: dict[str, object] = {k: statistics.median(x[k] for x in rounds) for k in rounds[0]}
            r["big_fault_occurrences"] = info["big_fault"]
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
    names = [*PAGES, "baseline: get_fault(1) in-process", "baseline: list_faults(50) in-process"]
    lines = [
        f"rows: {args.rows:,}; rounds: {args.runs} x {args.repeat} requests; machine: {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        "",
        "| page | " + " | ".join(results) + " |",
        "|---|" + "---|" * len(results),
    ]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(f"{results[b][n]:.1f} ms" for b in results) + " |")
    for b, r in results.items():
        lines.append("")
        lines.append(
            f"{b}: fault page / get_fault baseline = "
            f"{r['fault page, biggest fault'] / r['baseline: get_fault(1) in-process']:.2f}x; "
            f"fault list / list_faults baseline = "
            f"{r['fault list'] / r['baseline: list_faults(50) in-process']:.2f}x"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
