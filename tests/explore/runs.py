"""Helpers of the explorer's and robustness scenarios' tests: pytest runs of a scenario against a rig
of a running emulated lab, several at once (each waits mostly on emulated boots and timed soaks,
so running the good and the bad rig side by side halves the wall time and costs little CPU)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lab.emulator.testing import write_rig_file

REPO = Path(__file__).resolve().parents[2]
#: fast emulated boots: no U-Boot countdown, no kernel chatter
FAST_BOOT = {"bootdelay": 0, "kmsg_interval": 0}


def scenario_cmd(rig_file: Path, rig: str, run_dir: Path, *args: str) -> list[str]:
    """The pytest command running ``args`` (scenario files, options) against ``rig`` of ``rig_file``."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-file-faults", *args]
    return cmd + ["--rigs", str(rig_file), "--rig", rig, "--run-dir", str(run_dir)]


def run_together(
    cmds: Mapping[str, Sequence[str]], *, cwd: Path = REPO, timeout: float = 600
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Start every command, then wait for all (bounded); their results by name."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = {
        name: subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, cmd in cmds.items()
    }
    out: dict[str, subprocess.CompletedProcess[str]] = {}
    try:
        for name, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=timeout)
            out[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    return out


def iptv_rig(
    directory: Path, names: tuple[str, ...] = ("tv",), per_rig: dict[str, dict[str, Any]] | None = None
) -> tuple[Path, dict[str, str]]:
    """A rig file with emulated IPTV boxes, each on a network namespace of its own; (path, namespaces)."""
    nets = random.Random().sample(range(40, 250), len(names))
    spaces = {name: f"stblab-x20-{net}" for name, net in zip(names, nets, strict=True)}
    extra: dict[str, dict[str, Any]] = {}
    for name, net in zip(names, nets, strict=True):
        network = {
            "namespace": spaces[name],
            "box_address": f"10.232.{net}.2/24",
            "lab_address": f"10.232.{net}.1/24",
            "lab_addresses": [f"10.232.{net}.0/24", "239.1.1.0/24"],
        }
        extra[name] = {**(per_rig or {}).get(name, {}), "network": network}
    path = write_rig_file(
        directory, list(names), boot=FAST_BOOT, iptv={}, features=["hdmi", "ir", "ssh", "iptv"], per_rig=extra
    )
    return path, spaces
