"""Benchmark how fast ``stblab`` commands start: this tree against an older one, in the same run.

Run::

    python benchmarks/cli_startup.py --baseline db6de98            # a git commit/branch (git archive)
    python benchmarks/cli_startup.py --baseline ../old-tree --runs 11
    python benchmarks/cli_startup.py --baseline main --importtime   # and each command's biggest imports

Times the commands a user (or the suite) starts most for an answer rather than a long job: the
top-level help, a command group's help, bad input (a malformed rig file, the error a user waits for),
the gate on a good image with a malformed rig file,
and the per-rig emulator process up to its rig-file check (``python -m lab.emulator.process``, one
per emulated rig, so its imports are paid once per rig). Each command runs ``--runs`` times per tree,
the two trees alternating (which goes first alternates too) so load changes hit both. Wall time and
CPU time (user + system of the child, ``os.wait4``) are reported as medians with the ratio
after / before; the exit code and the first line of stderr must match between the trees (same
answer, only sooner). Both trees are byte-compiled first, as an installed package is (this lab's
shells set ``PYTHONDONTWRITEBYTECODE``, which would otherwise recompile every module on each start).
"""

from __future__ import annotations

import argparse
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
BAD_YAML = "rigs:\n  - name: a\n    model: [\n"

#: name -> arguments after ``python``; run in a folder holding bad.yaml
COMMANDS: dict[str, list[str]] = {
    "stblab --help": ["-m", "lab.cli", "--help"],
    "stblab lab, malformed rig file": ["-m", "lab.cli", "lab", "--rigs", "bad.yaml"],
    "stblab warranty check, malformed rig file": [
        "-m",
        "lab.cli",
        "warranty",
        "check",
        "1",
        "--rig",
        "a",
        "--rigs",
        "bad.yaml",
    ],  # fmt: skip
    "stblab firmware gate, good image, malformed rig file": [
        "-m",
        "lab.cli",
        "firmware",
        "gate",
        "fw.img",
        "--rigs",
        "bad.yaml",
        "--emulate",
        "never",
    ],  # fmt: skip
    "stblab firmware --help": ["-m", "lab.cli", "firmware", "--help"],
    "stblab emulate, malformed rig file": ["-m", "lab.cli", "emulate", "bad.yaml"],
    "per-rig emulator process, malformed rig file": ["-m", "lab.emulator.process", "bad.yaml", "a"],
}


def baseline_tree(spec: str, scratch: Path) -> Path:
    """``spec`` as a folder: an existing directory, or a git ref of this repository exported into ``scratch``."""
    if Path(spec).is_dir():
        return Path(spec).resolve()
    out = scratch / "baseline"
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", spec], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out


def compile_tree(tree: Path) -> None:
    """Byte-compile ``tree/lab`` (what ``pip install`` does for an installed package)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "lab")], check=True)


def run_once(tree: Path, args: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """Wall s, CPU s (user + system), exit code and first stderr line of one command on ``tree``."""
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1", COLUMNS="100")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    first = next((line for line in err.splitlines() if line.strip()), "")
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode, first.replace(str(tree), "TREE")


def biggest_imports(tree: Path, args: list[str], cwd: Path, top: int = 4) -> list[tuple[float, str]]:
    """The ``top`` biggest top-level imports (cumulative ms) of a command, from ``-X importtime``."""
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    err = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=cwd, env=env, capture_output=True,
                         text=True).stderr  # fmt: skip
    rows = []
    for line in err.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| ( *)(\S+)", line)
        if m and not m.group(2):  # imported by the command itself, not by another import
            rows.append((int(m.group(1)) / 1000, m.group(3)))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    """Measure, then print the machine, a markdown table and (``--importtime``) the biggest imports."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", required=True, help="older tree: a folder or a git ref of this repository")
    ap.add_argument("--runs", type=int, default=9, help="runs per command and tree (median reported)")
    ap.add_argument("--importtime", action="store_true", help="also list each command's biggest imports")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cli-startup-") as scratch_name:
        scratch = Path(scratch_name)
        before = baseline_tree(opts.baseline, scratch)
        trees = {"before": before, "after": REPO}
        for tree in trees.values():
            compile_tree(tree)
        work = scratch / "work"
        work.mkdir()
        (work / "bad.yaml").write_text(BAD_YAML)
        build = ["-m", "lab.cli", "firmware", "build", "--model", "STB-4K-X1", "--version", "2.1.0", "--unsigned",
                 "-o", "fw.img"]  # fmt: skip
        subprocess.run([sys.executable, *build], cwd=work, env=dict(os.environ, PYTHONPATH=str(REPO)),
                       check=True, capture_output=True)  # fmt: skip
        load0 = os.getloadavg()
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}, "
              f"Python {platform.python_version()}")  # fmt: skip
        print(f"before: {opts.baseline} ({before}); after: {REPO}; {opts.runs} runs each, alternating")
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        print(f"started {stamp}, load average {load0[0]:.1f}")
        results: dict[str, dict[str, list[tuple[float, float, int, str]]]] = {}
        for name, args in COMMANDS.items():
            results[name] = {"before": [], "after": []}
            for i in range(opts.runs):
                order = ["before", "after"] if i % 2 == 0 else ["after", "before"]
                for which in order:
                    results[name][which].append(run_once(trees[which], args, work))
        load1 = os.getloadavg()
        print(f"ended, load average {load1[0]:.1f}\n")
        print("| command | wall before | wall after | **after / before** | CPU before | CPU after | "
              "**after / before** | same answer |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for name, runs in results.items():
            wb, wa = (statistics.median(r[0] for r in runs[w]) for w in ("before", "after"))
            cb, ca = (statistics.median(r[1] for r in runs[w]) for w in ("before", "after"))
            answers = {(r[2], r[3]) for w in ("before", "after") for r in runs[w]}
            same = "yes" if len(answers) == 1 else f"NO: {sorted(answers)}"
            code = next(iter(answers))[0] if len(answers) == 1 else "?"
            print(f"| {name} (exit {code}) | {wb:.2f} s | {wa:.2f} s | **{wa / wb:.2f}x** | {cb:.2f} s | "
                  f"{ca:.2f} s | **{ca / cb:.2f}x** | {same} |")  # fmt: skip
        if opts.importtime:
            print("\nbiggest imports by the command itself (cumulative ms, one `-X importtime` run each):\n")
            for name, args in COMMANDS.items():
                for which, tree in trees.items():
                    rows = ", ".join(f"{mod} {ms:.0f}" for ms, mod in biggest_imports(tree, args, work))
                    print(f"- {name}, {which}: {rows}")


if __name__ == "__main__":
    main()
