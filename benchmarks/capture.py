"""Capture benchmark: frames delivered vs frames sent, drops, and the ring buffer's memory.

A local HDMI-to-IP encoder stand-in serves 720p MJPEG over HTTP (pre-encoded JPEGs of a busy
test picture, ~100 KB each, paced on a monotonic grid) at 25 and 60 fps. For each rate it runs,
in the same process and alternating:

* ``stblab``: ``lab.drivers.capture.Capture`` with a consumer iterating ``frames()`` (each
  frame decoded to a BGR array, as a check would get it); counts delivered, ``dropped`` (source
  frames that never arrived) and ``consumer_dropped``.
* ``baseline``: a plain ``cv2.VideoCapture`` read loop (OpenCV decodes every frame).

Then it fills a ring with 10 s of 720p25 and reports the ring's bytes and the process RSS growth,
against the size of 10 s of raw BGR arrays.

    python benchmarks/capture.py --seconds 5 --runs 3
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.drivers.capture import Capture  # noqa: E402
from lab.drivers.ring import FrameRing  # noqa: E402

W, H = 1280, 720


def make_jpegs(n: int = 50, quality: int = 80) -> list[bytes]:
    """Distinct 720p test pictures: gradients, moving bars, text and a little noise."""
    rng = np.random.default_rng(1)
    out = []
    yy, xx = np.mgrid[0:H, 0:W]
    for i in range(n):
        img = np.zeros((H, W, 3), np.uint8)
        img[..., 0] = (xx * 255 // W + i * 5) % 256
        img[..., 1] = (yy * 255 // H) % 256
        img[..., 2] = ((xx + yy + i * 20) // 64 % 2) * 120
        x = (i * 37) % (W - 200)
        img[200:520, x : x + 200] = (30, 200, 250)
        cv2.putText(
            img, f"frame {i:04d}  stblab capture benchmark", (60, 640), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (255,) * 3, 3
        )
        noise = rng.integers(0, 3, size=(H, W, 1), dtype=np.uint8)
        img = cv2.add(img, np.repeat(noise, 3, axis=2))
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        out.append(enc.tobytes())
    return out


class Encoder:
    """multipart/x-mixed-replace MJPEG at ``fps``, counting the frames it sent."""

    def __init__(self, jpegs: list[bytes], fps: float) -> None:
        self.jpegs, self.fps = jpegs, fps
        self.sent = 0
        self.skipped = 0
        enc = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                t0, k = time.monotonic(), 0
                while not enc.stopping:
                    k += 1
                    late = time.monotonic() - (t0 + k / enc.fps)
                    if late < 0:
                        time.sleep(-late)
                    elif late > 1 / enc.fps:  # fell a whole frame behind: skip ticks, as encoders do
                        missed = int(late * enc.fps)
                        enc.skipped += missed
                        k += missed
                    data = enc.jpegs[k % len(enc.jpegs)]
                    head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                    try:
                        self.wfile.write(head + data + b"\r\n")
                        self.wfile.flush()
                    except OSError:
                        return
                    enc.sent += 1

        self.stopping = False
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stopping = True
        self.httpd.shutdown()
        self.httpd.server_close()


def run_stblab(jpegs: list[bytes], fps: float, seconds: float, work: float = 0.0) -> dict[str, float]:
    enc = Encoder(jpegs, fps)
    try:
        with Capture(enc.url, fps_hint=fps, ring_seconds=10) as cap:
            cap.next_frame(timeout=10)
            sent0, skip0 = enc.sent, enc.skipped
            got0, drop0, cdrop0 = cap.frames_received, cap.dropped, cap.consumer_dropped
            consumed = 0
            lag = []
            for frame in cap.frames(timeout=seconds):
                consumed += int(frame.image.shape[0] > 0)
                lag.append(time.monotonic() - frame.time)
                if work:
                    time.sleep(work)  # a consumer slower than the source (a heavy check)
            return {
                "lag_ms": statistics.median(lag) * 1000 if lag else 0.0,
                "sent": enc.sent - sent0,
                "source_skipped": enc.skipped - skip0,
                "delivered": cap.frames_received - got0,
                "consumed": consumed,
                "dropped": cap.dropped - drop0,
                "consumer_dropped": cap.consumer_dropped - cdrop0,
            }
    finally:
        enc.close()


def run_baseline(jpegs: list[bytes], fps: float, seconds: float, work: float = 0.0) -> dict[str, float]:
    enc = Encoder(jpegs, fps)
    try:
        cap = cv2.VideoCapture(enc.url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000])
        ok, _ = cap.read()
        assert ok, "baseline could not read the stream"
        sent0, skip0, got = enc.sent, enc.skipped, 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ok, img = cap.read()
            if not ok:
                break
            got += 1
            if work:
                time.sleep(work)
        cap.release()
        return {
            "lag_ms": float("nan"),
            "sent": enc.sent - sent0,
            "source_skipped": enc.skipped - skip0,
            "delivered": got,
            "consumed": got,
            "dropped": 0,
            "consumer_dropped": 0,
        }
    finally:
        enc.close()


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def ring_memory(jpegs: list[bytes], seconds: float = 10.0, fps: float = 25.0) -> dict[str, float]:
    gc.collect()
    before = rss_bytes()
    ring = FrameRing(seconds)
    n = int(seconds * fps)
    for i in range(n + 25):  # a little past full: eviction in play
        ring.add(i, i / fps, jpegs[i % len(jpegs)] + bytes(8) + i.to_bytes(4, "little"), W, H)
    gc.collect()
    return {
        "frames": len(ring),
        "ring_bytes": ring.nbytes,
        "rss_growth": rss_bytes() - before,
        "raw_bytes": len(ring) * W * H * 3,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fps", type=float, nargs="+", default=[25.0, 60.0])
    ap.add_argument("--slow-ms", type=float, default=30.0, help="per-frame work of the slow consumer at 60 fps")
    ap.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    jpegs = make_jpegs()
    if args.memory_child:
        print(json.dumps(ring_memory(jpegs)))
        return
    py = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"# {platform.machine()} {py}, OpenCV {cv2.__version__}")
    print(f"# JPEG size: median {statistics.median(map(len, jpegs)) / 1000:.0f} KB, {W}x{H}")
    cases = [(fps, 0.0) for fps in args.fps] + [(60.0, args.slow_ms / 1000)]
    for fps, work in cases:
        rows: dict[str, list[dict[str, float]]] = {"stblab": [], "baseline": []}
        for _ in range(args.runs):
            rows["stblab"].append(run_stblab(jpegs, fps, args.seconds, work))
            rows["baseline"].append(run_baseline(jpegs, fps, args.seconds, work))
        for name, runs in rows.items():
            ratio = [r["delivered"] / r["sent"] for r in runs if r["sent"]]
            label = f"fps={fps:g}" + (f" consumer {work * 1000:g} ms/frame" if work else "")
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(
                f"{label} {name:8s} lag={med['lag_ms']:.0f}ms sent={med['sent']:.0f} "
                f"delivered={med['delivered']:.0f} consumed={med['consumed']:.0f} "
                f"delivered/sent={statistics.median(ratio):.3f} (runs: {', '.join(f'{x:.3f}' for x in ratio)}) "
                f"encoder_skipped={med['source_skipped']:.0f} dropped={med['dropped']:.0f} "
                f"consumer_dropped={med['consumer_dropped']:.0f}"
            )
    mem = []
    for _ in range(3):  # each in a fresh process, so RSS growth is the ring's own
        child = subprocess.run([sys.executable, __file__, "--memory-child"], capture_output=True, text=True, check=True)
        mem.append(json.loads(child.stdout))
    m = {k: statistics.median(x[k] for x in mem) for k in mem[0]}
    print(
        f"ring 10 s 720p25: frames={m['frames']:.0f} ring_bytes={m['ring_bytes'] / 1e6:.1f} MB "
        f"rss_growth={m['rss_growth'] / 1e6:.1f} MB raw_arrays_would_be={m['raw_bytes'] / 1e6:.0f} MB"
    )


if __name__ == "__main__":
    main()
