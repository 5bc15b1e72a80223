"""Benchmark: eight emulated rigs on one machine (issue 2 "Scale").

Measures, per rig and with all eight running at once:

* boot time: PDU "on" (HTTP POST) to the ``login:`` prompt on the raw TCP console, against the
  nominal boot time the rig's timings add up to (the baseline: what an idle machine would give);
* CPU while idle (booted, nobody watching) and while streaming 720p25 MJPEG to one HTTP client
  per rig (frames counted, not decoded, so the client costs little), from /proc/PID/stat;
* resident memory (VmRSS) per rig process, against a bare Python interpreter that imports the
  same libraries (the baseline: what the emulator adds on top of its runtime).

Usage::

    python benchmarks/emulator.py [--rigs 8] [--runs 3] [--seconds 10]

Prints a markdown table (medians over the runs) for benchmarks/emulator.md.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.emulator.testing import EmulatedLab, write_rig_file  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rig_pids(rig_file: Path, names: list[str]) -> dict[str, int]:
    out = {}
    for name in names:
        found = subprocess.run(
            ["pgrep", "-f", f"lab.emulator.process {rig_file} {name}$"], capture_output=True, text=True
        ).stdout.split()
        out[name] = int(found[0])
    return out


def cpu_percent(pids: dict[str, int], seconds: float) -> dict[str, float]:
    start = {n: cpu_ticks(p) for n, p in pids.items()}
    time.sleep(seconds)
    return {n: 100.0 * (cpu_ticks(p) - start[n]) / HZ / seconds for n, p in pids.items()}


def boot_all(lab: EmulatedLab) -> dict[str, float]:
    """Power every rig on at once; seconds from the PDU POST to the login prompt, per rig."""
    results: dict[str, float] = {}

    def one(name: str) -> None:
        rig = lab.rigs[name]
        host, port = rig.serial.url.removeprefix("socket://").rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=30)
        body = json.dumps({"Outputs": [{"ID": rig.power.outlet, "Action": 1}]}).encode()
        t0 = time.monotonic()
        urllib.request.urlopen(urllib.request.Request(rig.power.url + "/netio.json", data=body, method="POST"))
        buf = b""
        while b"login: " not in buf[-200:]:
            data = sock.recv(65536)
            if not data:
                raise RuntimeError(f"{name}: console closed")
            buf += data
        results[name] = time.monotonic() - t0
        sock.close()

    threads = [threading.Thread(target=one, args=(n,)) for n in lab.rigs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


class StreamClient(threading.Thread):
    """Reads /stream.mjpg and counts parts (JPEG frames) without decoding them."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.frames = 0
        self.stop = threading.Event()

    def run(self) -> None:
        host_port, path = self.url.removeprefix("http://").split("/", 1)
        host, port = host_port.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\n\r\n".encode())
            tail = b""
            while not self.stop.is_set():
                data = s.recv(262144)
                if not data:
                    return
                chunk = tail + data
                self.frames += chunk.count(b"--frame")
                tail = chunk[-8:]


def baseline_rss_mb() -> float:
    """RSS of a bare interpreter importing what an emulator process imports (no servers, no box)."""
    code = (
        "import paramiko, cv2, numpy, pydantic, yaml, serial, cryptography, pathlib;"
        "print([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1])"
    )
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout) / 1024


def one_run(n: int, seconds: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        names = [f"stb-{i + 1}" for i in range(n)]
        rig_file = write_rig_file(tmp, names)
        with EmulatedLab(rig_file, ready_timeout=120) as lab:
            pids = rig_pids(rig_file, names)
            idle_off = cpu_percent(pids, seconds / 2)
            boots = boot_all(lab)
            time.sleep(1.0)
            idle = cpu_percent(pids, seconds)
            clients = [StreamClient(lab.rigs[n].video.url) for n in names]
            for c in clients:
                c.start()
            time.sleep(1.0)
            before = [c.frames for c in clients]
            streaming = cpu_percent(pids, seconds)
            fps = [(c.frames - b) / seconds for c, b in zip(clients, before, strict=True)]
            for c in clients:
                c.stop.set()
            rss = {name: rss_mb(pid) for name, pid in pids.items()}
        nominal = 2 * 1.0 + 0.8 + 0.4 + 0.05  # bootdelay steps + kernel + init + power-on latency
    return {
        "boot": boots,
        "nominal_boot": nominal,
        "cpu_off": idle_off,
        "cpu_idle": idle,
        "cpu_stream": streaming,
        "fps": fps,
        "rss": rss,
    }


def _median(runs: list[dict[str, object]], key: str, agg=statistics.median) -> float:  # noqa: ANN001
    """Median over runs of ``agg`` over the rigs of one run."""
    values = []
    for r in runs:
        v = r[key]
        values.append(agg(list(v.values()) if isinstance(v, dict) else v))  # type: ignore[union-attr,arg-type]
    return statistics.median(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rigs", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    many: list[dict[str, object]] = []
    single: list[dict[str, object]] = []
    for i in range(args.runs):
        for n, sink in ((args.rigs, many), (1, single)):
            r = one_run(n, args.seconds)
            sink.append(r)
            boot = max(r["boot"].values())  # type: ignore[union-attr]
            print(f"run {i + 1}, {n} rig(s): slowest boot {boot:.2f} s", file=sys.stderr)
    base_rss = baseline_rss_mb()
    nominal = float(many[0]["nominal_boot"])  # type: ignore[arg-type]
    rows: list[tuple[str, float, float, str]] = [
        ("boot to login prompt, median rig (s)", _median(many, "boot"), _median(single, "boot"), "%.2f"),
        ("boot to login prompt, slowest rig (s)", _median(many, "boot", max), _median(single, "boot", max), "%.2f"),
        ("CPU per rig, powered off (% of a core)", _median(many, "cpu_off"), _median(single, "cpu_off"), "%.1f"),
        ("CPU per rig, booted, idle (% of a core)", _median(many, "cpu_idle"), _median(single, "cpu_idle"), "%.1f"),
        (
            "CPU per rig, streaming 720p25 (% of a core)",
            _median(many, "cpu_stream"),
            _median(single, "cpu_stream"),
            "%.1f",
        ),
        ("frames/s delivered per rig (25 asked)", _median(many, "fps"), _median(single, "fps"), "%.1f"),
        ("RSS per rig, median (MB)", _median(many, "rss"), _median(single, "rss"), "%.0f"),
        ("RSS per rig, largest (MB)", _median(many, "rss", max), _median(single, "rss", max), "%.0f"),
    ]
    print(f"\n{args.rigs} rigs at once vs 1 rig alone (baseline), {args.runs} runs, {args.seconds:g} s windows;")
    print(f"medians over runs. Nominal boot (timings add up to) {nominal:.2f} s;", end=" ")
    print(f"bare interpreter with the same imports {base_rss:.0f} MB RSS.\n")
    print(f"| measure | {args.rigs} rigs | 1 rig (baseline) | ratio |\n|---|---|---|---|")
    for name, value, base, fmt in rows:
        ratio = f"{value / base:.2f}" if base else "n/a"
        print(f"| {name} | {fmt % value} | {fmt % base} | {ratio} |")


if __name__ == "__main__":
    main()
