"""Console output through real ser2net 4: big command outputs, whole, and how fast, stblab vs a plain client.

The box is real bash on a pty (socat) exported by real ser2net 4 (raw TCP and telnet/RFC 2217), as
in tests/real_peers. Each trial runs ``seq 1 N`` and takes the whole output:

* ``stblab``: ``SerialConsole.run()`` (console log on disk, death-string scan, ANSI filter, kernel-line
  removal, spill to a file once the output outgrows the 1 MiB expect buffer);
* baseline: a plain client on the same port -- a socket (raw) or pyserial's ``rfc2217://`` port
  (RFC 2217) -- that types the same framed command and reads until the end marker, nothing else.

Both are checked byte for byte against the expected output (a short output is a failed trial,
not a fast one). Trials alternate between the two clients so noise hits both alike; ser2net
serves one client a port, so each client connects before its trial and leaves after it.

Run::

    python benchmarks/console_output.py --runs 5
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "real_peers"))

import serial  # noqa: E402
from peer_programs import missing, start_console  # noqa: E402

from lab.drivers.console import SerialConsole, clean_output  # noqa: E402


def expected(n: int) -> str:
    return "".join(f"{i}\n" for i in range(1, n + 1))


def plain_raw(port: int, n: int) -> tuple[float, str]:
    """Baseline over raw TCP: type the framed command, read until the end marker."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"\n")
        _read_until(sock.recv, b"# ")
        t0 = time.perf_counter()
        sock.sendall(f"echo SB1; seq 1 {n}; echo SE$?\n".encode())
        data = _read_until(sock.recv, b"SE0")
        dt = time.perf_counter() - t0
    text = data.decode()
    body = text[text.index("SB1\r\n") + 5 : text.rindex("SE0")]
    return dt, clean_output(body)


def plain_rfc2217(port: int, n: int) -> tuple[float, str]:
    """Baseline over RFC 2217: pyserial's own client, the same command, read until the marker."""
    ser = serial.serial_for_url(f"rfc2217://127.0.0.1:{port}?ign_set_control", timeout=0.2)
    try:
        ser.write(b"\n")
        _read_until(lambda k: ser.read(max(1, ser.in_waiting)), b"# ")
        t0 = time.perf_counter()
        ser.write(f"echo SB1; seq 1 {n}; echo SE$?\n".encode())
        data = _read_until(lambda k: ser.read(max(1, ser.in_waiting)), b"SE0")
        dt = time.perf_counter() - t0
    finally:
        ser.close()
    text = data.decode()
    body = text[text.index("SB1\r\n") + 5 : text.rindex("SE0")]
    return dt, clean_output(body)


def _read_until(recv, marker: bytes, timeout: float = 300.0) -> bytes:
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while marker not in buf[-max(4096, len(marker)) :] and marker not in buf:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {marker!r} within {timeout} s")
        chunk = recv(65536)
        if chunk:
            buf += chunk
    return bytes(buf)


def stblab(url: str, n: int, folder: Path) -> tuple[float, str, bool]:
    con = SerialConsole(url, rig_name="bench", log_path=folder / "bench.console.log")
    con.open()
    try:
        con.login(timeout=20)
        t0 = time.perf_counter()
        r = con.run(f"seq 1 {n}", timeout=600)
        dt = time.perf_counter() - t0
        return dt, r.output, r.output_path is not None
    finally:
        con.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--raw-sizes", default="150000,700000", help="N for seq 1 N over raw TCP")
    ap.add_argument("--rfc2217-sizes", default="150000", help="N for seq 1 N over RFC 2217")
    args = ap.parse_args()
    why = missing("ser2net", "socat", "bash")
    if why:
        print(f"cannot run: {why}")
        return 2
    print(f"machine: {platform.machine()}, {platform.system()} {platform.release()}, py {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        peers = start_console(folder / "peers")
        try:
            plan = [("raw", int(n)) for n in args.raw_sizes.split(",")]
            plan += [("rfc2217", int(n)) for n in args.rfc2217_sizes.split(",")]
            print("| transport | output | stblab median s | baseline median s | ratio | stblab MB/s | whole |")
            print("|---|---|---|---|---|---|---|")
            for transport, n in plan:
                want = expected(n)
                digest = hashlib.sha256(want.encode()).hexdigest()
                ours, base, whole = [], [], True
                for _ in range(args.runs):
                    url = peers.raw_url if transport == "raw" else peers.rfc2217_url
                    dt, out, spilled = stblab(url, n, folder)
                    ok = hashlib.sha256(out.encode()).hexdigest() == digest
                    if not ok:
                        print(f"stblab output differs: {len(out)} of {len(want)} chars (spilled: {spilled})")
                    whole &= ok
                    ours.append(dt)
                    port = peers.raw_port if transport == "raw" else peers.rfc2217_port
                    bdt, bout = (plain_raw if transport == "raw" else plain_rfc2217)(port, n)
                    if bout != want:
                        print(f"baseline output differs: {len(bout)} of {len(want)} chars")
                    whole &= bout == want
                    base.append(bdt)
                mo, mb = statistics.median(ours), statistics.median(base)
                size = len(want) / 1e6
                print(
                    f"| {transport} | {size:.2f} MB | {mo:.3f} | {mb:.3f} | {mo / mb:.2f} | {size / mo:.2f} | "
                    f"{'yes' if whole else 'NO'} |",
                    flush=True,
                )
        finally:
            peers.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
