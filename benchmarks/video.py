"""Benchmark the video checks on 1080p frames, on one core, against ffmpeg blackdetect+freezedetect.

Run::

    python benchmarks/video.py            # --frames 40 --runs 5 --core 1

Per-frame CPU time (user + system, on one pinned core, so other load on this shared machine
inflates it less than wall time would) of each check (median of ``--runs`` passes over ``--frames`` distinct 1080p
frames of ffmpeg's testsrc2, each pass on fresh Frame objects so nothing is cached across
checks), the combined per-frame set (black + motion + one 200x100 template match sharing one
Frame) as a multiple of 60 fps real time, and in the same run the baseline: ffmpeg's
``blackdetect,freezedetect`` on the same raw BGR frames piped in (``-threads 1
-filter_threads 1``, pinned to the same core; its CPU time from ``getrusage`` of the child), with
ffmpeg's pipe/convert overhead measured by ``-vf null`` alongside. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.video import Frame, FreezeDetector, MotionDetector, blockiness, is_black, match  # noqa: E402
from lab.video.match import Template  # noqa: E402

W, H = 1920, 1080


def make_frames(n: int) -> np.ndarray:
    cmd = [
        "ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=60",
        "-frames:v", str(n), "-f", "rawvideo", "-pix_fmt", "bgr24", "-",
    ]  # fmt: skip
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(n, H, W, 3)


def per_frame_ms(images: np.ndarray, runs: int, bodies: dict[str, Callable[[list[Frame]], None]]) -> dict[str, float]:
    """Median over runs of (time for one pass over fresh Frames) / frames, in ms, per check.

    The checks take turns within each run, so a burst of load from other processes on this
    shared machine hits all of them alike.
    """
    times: dict[str, list[float]] = {name: [] for name in bodies}
    for _ in range(runs):
        for name, body in bodies.items():
            frames = [Frame(img, i / 60, i) for i, img in enumerate(images)]
            t0 = time.process_time()
            body(frames)
            times[name].append((time.process_time() - t0) / len(frames) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def ffmpeg_ms(images: np.ndarray, runs: int, vf: str, core: int | None) -> float:
    cmd = [
        "ffmpeg", "-v", "error", "-threads", "1", "-filter_threads", "1", "-f", "rawvideo", "-pix_fmt", "bgr24",
        "-s", f"{W}x{H}", "-r", "60", "-i", "-", "-vf", vf, "-f", "null", "-",
    ]  # fmt: skip
    if core is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(core), *cmd]
    data = images.tobytes()
    times = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(cmd, input=data, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        times.append(cpu / len(images) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--core", type=int, default=1, help="CPU to pin to (-1: no pinning)")
    args = parser.parse_args()
    core = None if args.core < 0 else args.core
    if core is not None:
        os.sched_setaffinity(0, {core})
    cv2.setNumThreads(1)

    images = make_frames(args.frames)
    reference = Template(images[0][600:700, 1300:1500].copy(), name="ref200x100")

    def black(frames: list[Frame]) -> None:
        for f in frames:
            is_black(f)

    def black_ratio(frames: list[Frame]) -> None:
        for f in frames:
            is_black(f, mode="ratio")

    def motion(frames: list[Frame]) -> None:
        detector = MotionDetector()
        for f in frames:
            detector.update(f)

    def freeze(frames: list[Frame]) -> None:
        detector = FreezeDetector(duration=2.0)
        for f in frames:
            detector.update(f)

    def matching(frames: list[Frame]) -> None:
        for f in frames:
            assert match(reference, f).region is not None

    def artifacts(frames: list[Frame]) -> None:
        for f in frames:
            blockiness(f)

    def combined(frames: list[Frame]) -> None:
        detector = MotionDetector()
        for f in frames:
            is_black(f)
            detector.update(f)
            match(reference, f)

    results = per_frame_ms(
        images,
        args.runs,
        {
            "black (max mode)": black,
            "black (ratio mode, blackdetect-style)": black_ratio,
            "motion (vs previous frame)": motion,
            "freeze (vs still-run reference)": freeze,
            "template match 200x100, whole frame": matching,
            "artifact score (blockiness)": artifacts,
            "combined: black + motion + match": combined,
        },
    )

    grey = [cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) for img in images[:3]]
    t0 = time.process_time()
    for img in images[:3]:
        cv2.matchTemplate(img, reference.image, cv2.TM_CCOEFF_NORMED)
    naive_bgr = (time.process_time() - t0) / 3 * 1000
    t0 = time.process_time()
    for g in grey:
        cv2.matchTemplate(g, reference.grey[0], cv2.TM_CCOEFF_NORMED)
    naive_grey = (time.process_time() - t0) / 3 * 1000

    ff_both = ffmpeg_ms(images, args.runs, "blackdetect=d=0,freezedetect", core)
    ff_null = ffmpeg_ms(images, args.runs, "null", core)

    combined_ms = results["combined: black + motion + match"]
    machine = f"{platform.machine()}, {os.cpu_count()} cores (pinned to core {core})"
    print(f"machine: {machine}, Python {platform.python_version()}, OpenCV {cv2.__version__}, numpy {np.__version__}")
    print(f"frames: {args.frames} distinct {W}x{H} BGR testsrc2 frames; median of {args.runs} runs\n")
    print("| check | ms / frame | frames/s | x 60 fps |")
    print("|---|---:|---:|---:|")
    for name, ms in results.items():
        print(f"| {name} | {ms:.2f} | {1000 / ms:.0f} | {1000 / ms / 60:.1f} |")
    print(f"| naive cv2.matchTemplate, full-res BGR (3 frames) | {naive_bgr:.1f} | {1000 / naive_bgr:.1f} | "
          f"{1000 / naive_bgr / 60:.2f} |")  # fmt: skip
    print(f"| naive cv2.matchTemplate, full-res grey (3 frames) | {naive_grey:.1f} | {1000 / naive_grey:.1f} | "
          f"{1000 / naive_grey / 60:.2f} |")  # fmt: skip
    print(f"| ffmpeg blackdetect+freezedetect (rawvideo pipe, 1 thread) | {ff_both:.2f} | {1000 / ff_both:.0f} | "
          f"{1000 / ff_both / 60:.1f} |")  # fmt: skip
    print(f"| ffmpeg -vf null (pipe + demux only, same run) | {ff_null:.2f} | {1000 / ff_null:.0f} | "
          f"{1000 / ff_null / 60:.1f} |")  # fmt: skip
    print()
    print(f"combined set: {1000 / combined_ms / 60:.1f}x real time at 1080p60 (goal >= 4x)")
    print(f"combined set vs ffmpeg blackdetect+freezedetect: {ff_both / combined_ms:.2f}x the speed "
          f"(ffmpeg filters alone, pipe overhead removed: {max(ff_both - ff_null, 1e-9):.2f} ms/frame)")  # fmt: skip


if __name__ == "__main__":
    main()
