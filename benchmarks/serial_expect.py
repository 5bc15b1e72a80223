"""Serial expect latency: from a byte written by the box to the match returned, stblab vs pexpect.

A writer process plays the box: a ser2net-like TCP server with two clients on the same stream,
stblab's ``SerialConsole`` (``socket://``, console log on disk, death-string scan) and
``pexpect.fdpexpect.fdspawn`` on a plain socket (the baseline). For each trial the reader starts
waiting, the writer sleeps 2-5 ms, takes ``time.monotonic_ns()`` (CLOCK_MONOTONIC, shared by both
processes) and writes; the reader takes the clock when ``expect`` returns. Trials alternate
between the two readers so machine noise hits both alike.

Scenarios: ``idle`` (one short line carrying the token), ``busy`` (200 kernel-log lines,
~16 KB, then the token: the reader has to take in and scan the burst first) and ``flood``
(~1 MB of kernel-log lines written in 4 KB pieces, then the token: a chatty box while the
reader waits). Besides latency, the CPU time the reading process spent per trial
(``getrusage``, both threads) is recorded.

Run::

    python benchmarks/serial_expect.py --trials 300 --runs 3
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import random
import resource
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pexpect
import pexpect.fdpexpect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.drivers.serial import SerialConsole  # noqa: E402

NOISE = b"".join(
    f"[{i / 1000:12.6f}] stb_demux: section filter {i} pid 0x{i % 8191:04x} ok\r\n".encode() for i in range(200)
)
FLOOD = NOISE * 64  # ~1 MB
SCENARIOS = {"idle": b"", "busy": NOISE, "flood": FLOOD}


def writer(port_q: mp.Queue, ctl: mp.connection.Connection) -> None:
    """The box: accept two clients, then on each request write a payload to one of them."""
    srv = socket.create_server(("127.0.0.1", 0))
    port_q.put(srv.getsockname()[1])
    conns = [srv.accept()[0] for _ in range(2)]
    for c in conns:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rng = random.Random(7)
    while True:
        msg = ctl.recv()
        if msg is None:
            break
        which, noise, token = msg
        time.sleep(rng.uniform(0.002, 0.005))  # the reader is waiting by now
        if len(noise) > 65536:  # a flood: many writes, as a chatty UART delivers it
            for i in range(0, len(noise), 4096):
                conns[which].sendall(noise[i : i + 4096])
            noise = b""
        t0 = time.monotonic_ns()
        conns[which].sendall(noise + token)
        ctl.send(t0)
    for c in conns:
        c.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def run_once(trials: int, scenario: str, logdir: Path) -> dict[str, list[float]]:
    port_q: mp.Queue = mp.Queue()
    parent, child = mp.Pipe()
    proc = mp.Process(target=writer, args=(port_q, child), daemon=True)
    proc.start()
    port = port_q.get(timeout=10)
    con = SerialConsole(f"socket://127.0.0.1:{port}", rig_name="bench", log_path=logdir / f"{scenario}.log")
    con.open()
    time.sleep(0.05)  # connection order: stblab is client 0
    sock = socket.create_connection(("127.0.0.1", port))
    pex = pexpect.fdpexpect.fdspawn(sock.fileno(), timeout=10)
    lat: dict[str, list[float]] = {"stblab": [], "pexpect": [], "stblab-cpu": [], "pexpect-cpu": []}
    try:
        for i in range(trials):
            for which, name in ((0, "stblab"), (1, "pexpect")) if i % 2 == 0 else ((1, "pexpect"), (0, "stblab")):
                token = f"READY-{i}-{which}"
                cpu0 = resource.getrusage(resource.RUSAGE_SELF)
                parent.send((which, SCENARIOS[scenario], f"box says {token}\r\n".encode()))
                if name == "stblab":
                    con.expect(token, timeout=30)
                else:
                    pex.expect(token, timeout=30)
                t1 = time.monotonic_ns()
                cpu1 = resource.getrusage(resource.RUSAGE_SELF)
                t0 = parent.recv()
                lat[name].append((t1 - t0) / 1000.0)
                cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
                lat[name + "-cpu"].append(cpu * 1000.0)
    finally:
        parent.send(None)
        con.close()
        sock.close()
        proc.join(timeout=5)
    return lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--flood-trials", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(
        f"# {platform.machine()} {platform.python_implementation()} {platform.python_version()}, "
        f"pexpect {pexpect.__version__}, {mp.cpu_count()} CPUs; {args.runs} runs x {args.trials} trials "
        f"({args.flood_trials} for flood)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in SCENARIOS:
            trials = args.flood_trials if scenario == "flood" else args.trials
            per_run: dict[str, list[tuple[float, float, float]]] = {}
            for _ in range(args.runs):
                lat = run_once(trials, scenario, Path(tmp))
                for name, values in lat.items():
                    per_run.setdefault(name, []).append(
                        (statistics.median(values), percentile(values, 99), statistics.mean(values))
                    )
            for name in ("stblab", "pexpect"):
                rows, cpu = per_run[name], per_run[name + "-cpu"]
                med = statistics.median(r[0] for r in rows)
                p99 = statistics.median(r[1] for r in rows)
                cpu_ms = statistics.median(r[2] for r in cpu)
                print(
                    f"{scenario:5} {name:8} median {med:9.1f} us  p99 {p99:9.1f} us  cpu/trial {cpu_ms:7.2f} ms  "
                    f"(per run medians: {', '.join(f'{r[0]:.0f}' for r in rows)})"
                )
            ratio = statistics.median(r[0] for r in per_run["stblab"]) / statistics.median(
                r[0] for r in per_run["pexpect"]
            )
            print(f"{scenario:5} stblab/pexpect median latency ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
