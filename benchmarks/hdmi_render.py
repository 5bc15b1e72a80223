#!/usr/bin/env python3
"""Per-frame cost of the emulated box's HDMI rendering and JPEG encoding, cached vs uncached
(the baseline: the same renderer drawing everything per frame), and one MJPEG stream's CPU.

Run: ``python benchmarks/hdmi_render.py [--size 1280x720] [--frames 250] [--runs 5]``
"""

from __future__ import annotations

import time

from lab.emulator.hdmi import Renderer
from lab.emulator.mjpeg import encode_jpeg
from lab.emulator.screen import ScreenState


def main(argv: list[str] | None = None) -> None:
    """Print the per-frame figures (median of ``--runs``)."""
    import argparse
    import statistics
    import urllib.request

    ap = argparse.ArgumentParser(prog="benchmarks/hdmi_render.py", description=__doc__)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--stream-seconds", type=float, default=4.0)
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    t0 = time.monotonic()
    live = ScreenState(kind="live", channel=3, banner_until=t0 + 1e9)
    guide = ScreenState(kind="guide")

    def per_frame(renderer: Renderer, state: ScreenState, encode: bool) -> float:
        start = time.perf_counter()
        for i in range(args.frames):
            img = renderer.render(state, t0 + i / 25)
            if encode:
                encode_jpeg(img)
        return (time.perf_counter() - start) / args.frames * 1000

    rows = {
        "live render (cached)": lambda: per_frame(Renderer(w, h), live, False),
        "live render (no cache, baseline)": lambda: per_frame(Renderer(w, h, cache_size=0), live, False),
        "live render + JPEG q80 (cached)": lambda: per_frame(Renderer(w, h), live, True),
        "live render + JPEG q80 (no cache, baseline)": lambda: per_frame(Renderer(w, h, cache_size=0), live, True),
        "guide render + JPEG q80 (server reuses it)": lambda: per_frame(Renderer(w, h), guide, True),
    }
    print(f"{w}x{h}, {args.frames} frames per run, median of {args.runs} runs (ms per frame)")
    for name, fn in rows.items():
        values = [fn() for _ in range(args.runs)]
        print(f"  {name:<46} {statistics.median(values):7.3f}  (min {min(values):.3f}, max {max(values):.3f})")

    from lab.emulator.mjpeg import HdmiServer

    server = HdmiServer("127.0.0.1", 0, lambda: live, w, h, 25)
    server.start()
    try:
        with urllib.request.urlopen(server.url, timeout=5) as resp:
            cpu0, wall0 = time.process_time(), time.monotonic()
            while time.monotonic() - wall0 < args.stream_seconds:
                resp.read(65536)
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        frames = server.frames_published
    finally:
        server.stop()
    rate, load = frames / wall, 100 * cpu / wall
    print(f"  MJPEG stream {w}x{h}@25 to one client: {rate:.1f} fps, process CPU {load:.1f} % of one core")


if __name__ == "__main__":
    main()
