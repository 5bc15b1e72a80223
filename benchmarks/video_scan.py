"""Benchmark `stblab video scan` against `ffmpeg -vf blackdetect,freezedetect` on the same files.

Run::

    python benchmarks/video_scan.py                 # --runs 5 --seconds 20
    python benchmarks/video_scan.py --runs 5 --seconds 60 --codecs mpeg4 h264
    python benchmarks/video_scan.py --repo ../main --runs 3     # an older tree's scan, same files
    python benchmarks/video_scan.py --load 2                     # under `stress-ng --cpu 2` (a busy host)
    python benchmarks/video_scan.py --against ../main --sizes 1280x720 --runs 9  # two trees, one alternation

Makes 720p25 and 1080p25 clips with ffmpeg alone (testsrc2 with a cut to black, a still and
motion again; MPEG-4 and H.264 in MP4), then times, alternately, the whole ``stblab video scan
FILE --json`` process and ``ffmpeg -i FILE -vf blackdetect,freezedetect -f null -`` (its default
threads, as a user would run it) on each file. CPU time is user + system of the child process
(``os.wait4``), so interpreter start-up and imports count against the scan (the tree is
byte-compiled first, as an installed package is); wall time is shown
too. Prints a markdown table of medians over ``--runs`` and the ratio scan / ffmpeg, and checks
that both found the same black and frozen intervals (within one frame). ``--load N`` runs
``stress-ng --cpu N`` for the whole measurement, so both programs are timed on a busy host (the
ratio of CPU times is what is judged; wall times there only show the contention).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CODECS = {
    "mpeg4": ["-c:v", "mpeg4", "-q:v", "4"],
    "h264": ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"],
}


def make_clip(path: Path, size: str, seconds: float, codec: list[str]) -> None:
    """testsrc2 moving, 2 s black, 3 s still, moving to the end (``seconds`` long)."""
    rest = seconds - 2 - 2 - 3
    graph = (
        f"testsrc2=size={size}:rate=25,trim=duration={seconds + 1},format=yuv420p,split=4[a][b][c][d];"
        "[a]trim=start=0:duration=2,setpts=PTS-STARTPTS[v0];"
        "[b]trim=start=2:duration=2,setpts=PTS-STARTPTS,drawbox=c=black:t=fill[v1];"
        "[c]trim=start=4:duration=0.04,setpts=PTS-STARTPTS,tpad=stop_mode=clone:stop_duration=2.96[v2];"
        f"[d]trim=start=7:duration={rest},setpts=PTS-STARTPTS[v3];"
        "[v0][v1][v2][v3]concat=n=4:v=1:a=0[out]"
    )
    cmd = ["ffmpeg", "-v", "error", "-y", "-filter_complex", graph, "-map", "[out]", *codec, str(path)]
    subprocess.run(cmd, check=True)


def run(cmd: list[str], repo: Path = REPO, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``cmd`` and return (CPU seconds of the child, wall seconds, stdout + stderr)."""
    t0 = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(repo), **(env or {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=repo)
    chunks = [proc.stdout.read(), proc.stderr.read()]  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    text = b"".join(chunks).decode(errors="replace")
    if status:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed: {text[-500:]}")
    return usage.ru_utime + usage.ru_stime, wall, text


def ffmpeg_intervals(text: str) -> dict[str, list[tuple[float, float]]]:
    black = [(float(a), float(b)) for a, b in re.findall(r"black_start:([\d.]+) black_end:([\d.]+)", text)]
    starts = [float(x) for x in re.findall(r"freeze_start: ([\d.]+)", text)]
    ends = [float(x) for x in re.findall(r"freeze_end: ([\d.]+)", text)]
    return {"black": black, "frozen": list(zip(starts, ends, strict=False))}


def scan_intervals(text: str) -> dict[str, list[tuple[float, float]]]:
    report = json.loads(text)
    return {k: [(i["start"], i["end"]) for i in report["intervals"][k]] for k in ("black", "frozen")}


def agree(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> bool:
    if len(a) != len(b):
        return False
    return all(abs(x - z) <= 0.041 and abs(y - w) <= 0.041 for (x, y), (z, w) in zip(a, b, strict=True))


_IMPORTS = (  # the libraries' imports as the scan makes them: collector off, objects frozen, no teardown
    "import gc, os\ngc.disable()\nimport numpy, cv2, av\ngc.freeze()\nos._exit(0)"
)
_DECODE = (  # decoding alone, as the scan decodes (one thread), the frames dropped
    "import sys, av\nc = av.open(sys.argv[1])\nc.streams.video[0].thread_count = 1\nfor _ in c.decode(video=0): pass"
)


def breakdown(clip: Path, args: argparse.Namespace) -> str:
    """Medians of the parts of both programs' CPU time on ``clip``, as table cells."""
    quiet = ["ffmpeg", "-hide_banner", "-nostats", "-threads", "1", "-i", str(clip)]
    cmds = [
        ([sys.executable, "-c", "pass"], None),  # the interpreter and site (with this host's .pth files)
        ([sys.executable, "-c", _IMPORTS], {"OPENBLAS_NUM_THREADS": "1"}),  # as the scan sets it
        ([sys.executable, "-c", _DECODE, str(clip)], {"OPENBLAS_NUM_THREADS": "1"}),
        ([*quiet, "-f", "null", "-"], None),
        ([*quiet, "-vf", "blackdetect,freezedetect", "-f", "null", "-"], None),
    ]
    cpu: list[list[float]] = [[] for _ in cmds]
    for _ in range(args.runs):
        for times, (cmd, env) in zip(cpu, cmds, strict=True):
            times.append(run(cmd, args.repo, env)[0])
    return " | ".join(f"{statistics.median(t):.2f}" for t in cpu) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--sizes", nargs="+", default=["1280x720", "1920x1080"])
    parser.add_argument("--codecs", nargs="+", default=["mpeg4", "h264"], choices=sorted(CODECS))
    parser.add_argument("--repo", type=Path, default=REPO, help="stblab tree whose scan is timed")
    parser.add_argument(
        "--against",
        type=Path,
        default=None,
        help="another stblab tree whose scan is timed in the same alternation (and its JSON compared)",
    )
    parser.add_argument("--load", type=int, default=0, help="run `stress-ng --cpu N` while timing (0: none)")
    parser.add_argument(
        "--breakdown", action="store_true", help="also time the parts: start-up, decoding alone, ffmpeg on one thread"
    )
    args = parser.parse_args()
    hog = None
    if args.load:
        hog = subprocess.Popen(["stress-ng", "--cpu", str(args.load), "--quiet"], stdout=subprocess.DEVNULL)
    try:
        measure(args)
    finally:
        if hog is not None:
            hog.terminate()
            hog.wait(timeout=30)


def measure(args: argparse.Namespace) -> None:
    """Print the header and one table row per file (see the module docstring)."""
    import av
    import cv2
    import numpy

    # byte-compile the timed tree first, as `pip install` does: with PYTHONDONTWRITEBYTECODE set (this
    # lab's shells) every run would otherwise compile stblab's modules from source again
    for tree in (args.repo, args.against) if args.against else (args.repo,):
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "lab")], check=True)
    ffmpeg_version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    hog = f", under `stress-ng --cpu {args.load}`" if args.load else ""
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}{hog}; "
          f"Python {platform.python_version()}, PyAV {av.__version__}, OpenCV {cv2.__version__}, "
          f"numpy {numpy.__version__}; {ffmpeg_version}")  # fmt: skip
    print()
    print("| file | scan CPU s | ffmpeg CPU s | **CPU ratio** | scan wall s | ffmpeg wall s | same intervals |")
    print("|---|---:|---:|---:|---:|---:|---|")
    parts: list[str] = []
    versus: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            for codec in args.codecs:
                clip = Path(tmp) / f"{size}-{codec}.mp4"
                make_clip(clip, size, args.seconds, CODECS[codec])
                scan_cmd = [sys.executable, "-m", "lab.cli", "video", "scan", str(clip), "--json"]
                ffmpeg_cmd = ["ffmpeg", "-hide_banner", "-nostats", "-i", str(clip), "-vf",
                              "blackdetect,freezedetect", "-f", "null", "-"]  # fmt: skip
                s_cpu, s_wall, f_cpu, f_wall, o_cpu = [], [], [], [], []
                s_text = f_text = o_text = ""
                order = ["scan", "ffmpeg", "other"] if args.against else ["scan", "ffmpeg"]
                for i in range(args.runs):  # alternate, and rotate who goes first, so load changes hit all alike
                    for who in order[i % len(order) :] + order[: i % len(order)]:
                        if who == "scan":
                            c, w, s_text = run(scan_cmd, args.repo)
                            s_cpu.append(c)
                            s_wall.append(w)
                        elif who == "ffmpeg":
                            c, w, f_text = run(ffmpeg_cmd)
                            f_cpu.append(c)
                            f_wall.append(w)
                        else:
                            c, _, o_text = run(scan_cmd, args.against)
                            o_cpu.append(c)
                ours, theirs = scan_intervals(s_text), ffmpeg_intervals(f_text)
                same = all(agree(ours[k], theirs[k]) for k in ("black", "frozen"))
                sc, fc = statistics.median(s_cpu), statistics.median(f_cpu)
                print(f"| {size} {codec} {args.seconds:g} s | {sc:.2f} | {fc:.2f} | **{sc / fc:.2f}x** | "
                      f"{statistics.median(s_wall):.2f} | {statistics.median(f_wall):.2f} | "
                      f"{'yes' if same else f'no: {ours} vs {theirs}'} |")  # fmt: skip
                if args.against:
                    oc = statistics.median(o_cpu)
                    versus.append(f"| {size} {codec} {args.seconds:g} s | {sc:.2f} | {oc:.2f} | **{sc / oc:.2f}x** | "
                                  f"{fc:.2f} | {oc / fc:.2f}x | {'yes' if o_text == s_text else 'NO'} |")  # fmt: skip
                if args.breakdown:
                    cells = breakdown(clip, args)
                    parts.append(f"| {size} {codec} {args.seconds:g} s | {cells} {sc:.2f} | {fc:.2f} |")
        if versus:
            print(f"\nThis tree against {args.against} (same alternation, CPU s, medians):\n")
            print("| file | this tree | other tree | **this / other** | ffmpeg | other / ffmpeg | same JSON |")
            print("|---|---:|---:|---:|---:|---:|---|")
            print("\n".join(versus))
        if parts:
            print("\nWhere the time goes (CPU s, median of the same number of runs, each part alternating):\n")
            print("| file | python alone | python + numpy, OpenCV, PyAV imports "
                  "| PyAV decoding alone (1 thread, `import av`) | ffmpeg decoding alone, 1 thread "
                  "| ffmpeg + filters, 1 thread | scan | ffmpeg + filters |")  # fmt: skip
            print("|---|---:|---:|---:|---:|---:|---:|---:|")
            print("\n".join(parts))
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
