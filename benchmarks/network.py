"""Lab network benchmark: shaper accuracy, generator rate vs scapy, userspace forwarding capacity.

Run as root (needs network namespaces)::

    python benchmarks/network.py [--runs 3] [--seconds 3] [--json out.json]

1. Shaper accuracy: a UDP stream of 1316-byte datagrams (the IPTV size) at 20 and 100 Mbit/s
   from the lab side to a receiver process inside the box's namespace, through the userspace
   bridge with profile delay 20 ms, jitter 5 ms, loss 1 %. One-way delay from a send timestamp
   in each datagram (same host clock); measured loss, delay median/p5/p95 and jitter (stdev)
   against the profile.
2. Generator: frames/s and Mbit/s of TrafficGenerator (bytes built once with scapy, sent from
   an AF_PACKET loop) against scapy's own send() and sendp() on the same frame, same run.
3. Forwarding capacity of the userspace bridge: offered load vs delivered packets/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.network.impair import Shaper  # noqa: E402
from lab.network.netns import create_link  # noqa: E402
from lab.network.profile import Profile  # noqa: E402
from lab.network.traffic import TrafficGenerator, send_at_rate  # noqa: E402
from lab.rig import NetworkConfig  # noqa: E402

RECEIVER = r"""
import socket, struct, sys, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
sock.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
sock.settimeout(float(sys.argv[3]))
out = []
try:
    while True:
        data = sock.recv(2048)
        now = time.monotonic()
        seq, sent = struct.unpack_from("!Qd", data)
        out.append((seq, sent, now))
except TimeoutError:
    pass
with open(sys.argv[4], "w") as f:
    for seq, sent, now in out:
        f.write(f"{seq} {sent!r} {now!r}\n")
"""


def receive_start(ns: str, ip: str, port: int, idle: float, path: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-c", RECEIVER, ip, str(port), str(idle), path],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def stream(dst: tuple[str, int], pps: float, seconds: float, size: int = 1316) -> int:
    """Send numbered, timestamped datagrams at pps (batched pacing); returns how many."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    pad = b"\x00" * (size - 16)
    total = int(pps * seconds)
    t0 = time.monotonic()
    i = 0
    while i < total:
        due = min(total, int((time.monotonic() - t0) * pps) + 1)
        while i < due:
            sock.sendto(struct.pack("!Qd", i, time.monotonic()) + pad, dst)
            i += 1
        d = t0 + i / pps - time.monotonic()
        if d > 0.0005:
            time.sleep(d)
    sock.close()
    return total


def measure(link, pps: float, seconds: float, port: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as f:
        rx = receive_start(str(link.namespace), link.box_ip, port, 1.0, f.name)
        sent = stream((link.box_ip, port), pps, seconds)
        rx.wait(timeout=seconds + 30)
        rows = [line.split() for line in Path(f.name).read_text().splitlines()]
    seqs = {int(r[0]) for r in rows}
    delays = sorted((float(r[2]) - float(r[1])) * 1000 for r in rows)
    q = statistics.quantiles(delays, n=20) if len(delays) > 20 else [0.0] * 19
    arrivals = sorted(float(r[2]) for r in rows)
    return {
        "offered_pps": pps,
        "sent": sent,
        "received": len(seqs),
        "loss_pct": 100.0 * (1 - len(seqs) / sent),
        "delay_median_ms": statistics.median(delays) if delays else float("nan"),
        "delay_p5_ms": q[0],
        "delay_p95_ms": q[-1],
        "jitter_stdev_ms": statistics.pstdev(delays) if delays else float("nan"),
        "delivered_pps": (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0,
    }


def med(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def bench_shaper(link, runs: int, seconds: float) -> list[dict]:
    shaper = Shaper(link, backend="userspace")
    profile = Profile(name="bench", delay=20, jitter=5, loss=1, direction="downstream", seed=1)
    out = []
    for mbit in (20, 100):
        pps = mbit * 1e6 / 8 / (1316 + 28)  # UDP payload + IP/UDP headers
        results = []
        for r in range(runs):
            shaper.apply(profile.with_seed(r + 1))
            results.append(measure(link, pps, seconds, 9000 + r))
            shaper.clear()
        m = med(results)
        m.update({"mbit": mbit, "profile_delay_ms": 20, "profile_jitter_ms": 5, "profile_loss_pct": 1.0})
        m["profile_jitter_stdev_ms"] = 5 / 3**0.5  # uniform +/-5 ms
        out.append(m)
    return out


def bench_generator(link, runs: int) -> dict[str, dict[str, float]]:
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether
    from scapy.sendrecv import send, sendp

    gen = TrafficGenerator(link)
    frame = gen.udp_frames(link.box_ip, 9, 1000)
    pkt = Ether(frame[0])
    n_scapy = 2000
    res: dict[str, list[float]] = {"stblab": [], "stblab_paced_20k": [], "scapy_send": [], "scapy_sendp": []}
    for _ in range(runs):
        sock = gen._socket()
        st = send_at_rate(sock, frame, 1e9, count=200_000)
        res["stblab"].append(st.pps)
        st = send_at_rate(sock, frame, 20_000, seconds=2)
        res["stblab_paced_20k"].append(st.pps)
        sock.close()
        t = time.monotonic()
        send(pkt[IP], count=n_scapy, verbose=False)
        res["scapy_send"].append(n_scapy / (time.monotonic() - t))
        t = time.monotonic()
        sendp(pkt, iface=link.lab_if, count=n_scapy, verbose=False)
        res["scapy_sendp"].append(n_scapy / (time.monotonic() - t))
    size = len(frame[0])
    return {k: {"pps": statistics.median(v), "mbit": statistics.median(v) * size * 8 / 1e6} for k, v in res.items()}


def bench_forwarding(link, runs: int, seconds: float) -> list[dict[str, float]]:
    shaper = Shaper(link, backend="userspace")
    out = []
    for pps in (20_000, 40_000, 80_000):
        results = []
        for r in range(runs):
            shaper.apply(Profile(name="forward", delay=0.001, seed=r))  # bridge on, nothing else
            m = measure_small(link, pps, seconds, 9500 + r)
            shaper.clear()
            results.append(m)
        out.append(med(results))
    return out


def measure_small(link, pps: float, seconds: float, port: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as f:
        rx = receive_start(str(link.namespace), link.box_ip, port, 1.0, f.name)
        gen_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        gen_sock.connect((link.box_ip, port))
        frames = [struct.pack("!Qd", 0, 0.0) + b"\x00" * 48]
        st = send_at_rate(gen_sock, frames, pps, seconds=seconds)
        gen_sock.close()
        rx.wait(timeout=seconds + 30)
        n = len(Path(f.name).read_text().splitlines())
    return {
        "offered_pps": pps,
        "achieved_offered_pps": st.pps,
        "delivered_pps": n / st.seconds,
        "loss_pct": 100 * (1 - n / st.sent),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("benchmarks/network.py needs root (network namespaces)")
    cfg = NetworkConfig(
        namespace=f"stblab-bench-{os.getpid()}",
        box_address="10.239.250.2/24",
        lab_address="10.239.250.1/24",
        lab_addresses=["10.239.250.0/24"],
    )
    link = create_link("bench", cfg)
    try:
        measure(link, 100, 0.2, 8999)  # ARP, warm-up
        result = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "runs": args.runs,
            "shaper": bench_shaper(link, args.runs, args.seconds),
            "generator": bench_generator(link, args.runs),
            "forwarding": bench_forwarding(link, args.runs, min(args.seconds, 2.0)),
        }
    finally:
        link.down()
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
