"""Where the test suite's time goes: wall time, worker-seconds, and the sums per file.

Runs the README's test command with every duration reported (or reads the output of one such run)
and prints the wall time, the worker-seconds (setup + call + teardown of every test, summed), the
sums per test file, and the slowest tests::

    python benchmarks/suite.py                      # python3 -m pytest -n 2 -p no:cacheprovider --durations=0 tests
    python benchmarks/suite.py --log /tmp/prof.log  # reads a finished run's output instead
    python benchmarks/suite.py --top 15 --files 25

Wall time over worker-seconds / workers tells how much the scheduling loses (one worker busy with
a long test while the other has finished). Figures and their machine: benchmarks/suite.md.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "--durations=0", "tests"]
_ROW = re.compile(r"^\s*(?P<seconds>[\d.]+)s (?P<phase>setup|call|teardown)\s+(?P<nodeid>\S+)")
_WALL = re.compile(r"\d+ (?:passed|failed)\b.* in (?P<seconds>[\d.]+)s")


def parse(text: str) -> tuple[list[tuple[float, str, str]], float | None]:
    """(seconds, phase, nodeid) of every reported duration, and pytest's own wall time (None if absent)."""
    rows = [(float(m["seconds"]), m["phase"], m["nodeid"]) for m in map(_ROW.match, text.splitlines()) if m]
    walls = [float(m["seconds"]) for m in map(_WALL.search, text.splitlines()) if m]
    return rows, (walls[-1] if walls else None)


def report(rows: list[tuple[float, str, str]], wall: float | None, top: int, files: int, workers: int) -> str:
    """The figures as text."""
    total = sum(s for s, _, _ in rows)
    per_file: collections.Counter[str] = collections.Counter()
    per_phase: collections.Counter[str] = collections.Counter()
    for seconds, phase, nodeid in rows:
        per_file[nodeid.split("::", 1)[0]] += seconds
        per_phase[phase] += seconds
    out = []
    if wall is not None:
        out.append(f"wall: {wall:.0f} s ({wall / 60:.1f} min)")
    phases = ", ".join(f"{phase} {per_phase[phase]:.0f}" for phase in ("setup", "call", "teardown"))
    out.append(f"worker-seconds: {total:.0f} ({phases}); ideal wall on {workers} workers: {total / workers:.0f} s")
    out.append(f"\nslowest {files} files (worker-seconds):")
    out += [f"{seconds:8.1f}  {name}" for name, seconds in per_file.most_common(files)]
    out.append(f"\nslowest {top} tests:")
    out += [f"{s:8.2f}  {phase:<8} {nodeid}" for s, phase, nodeid in sorted(rows, reverse=True)[:top]]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--log", type=Path, help="read this pytest output (run with --durations=0) instead of running")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if args.log:
        text = args.log.read_text(encoding="utf-8", errors="replace")
        rows, wall = parse(text)
    else:
        t0 = time.monotonic()
        proc = subprocess.run(COMMAND, cwd=REPO, capture_output=True, text=True)
        wall_measured = time.monotonic() - t0
        text = proc.stdout + proc.stderr
        rows, wall = parse(text)
        wall = wall_measured
        print(text.splitlines()[-1] if text.strip() else "(no output)")
    print(report(rows, wall, args.top, args.files, args.workers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
