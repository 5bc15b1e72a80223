"""Soak: zapping and menu use for a long time (``--soak-minutes``, default 30), with the box's memory,
load and temperature sampled at intervals. A leak is a falling MemAvailable whose whole 95 %
interval of the fitted slope lies below the tolerance, not one low sample; the samples and the
fitted line are plotted into the test's evidence folder either way."""

from __future__ import annotations

import json
import re
import time

import pytest

from lab.errors import DeviceFault
from lab.explore.trend import plot_png, trend
from lab.plugin.evidence import slug

LEAK_TOLERANCE_KB_PER_S = -1024 / 3600  # losing less than 1 MB an hour is not called a leak
KEYS = ("KEY_CHANNELUP", "KEY_CHANNELUP", "KEY_MENU", "KEY_DOWN", "KEY_BACK", "KEY_CHANNELDOWN", "KEY_INFO")


def _sample(stb) -> dict[str, float]:
    meminfo = stb.run("cat /proc/meminfo").check().output
    m = re.search(r"MemAvailable:\s+(\d+)", meminfo)
    if not m:
        raise DeviceFault("/proc/meminfo has no MemAvailable", symptom="bad-meminfo")
    out = {"mem_available_kb": float(m.group(1))}
    load = stb.run("cat /proc/loadavg").output.split()
    if load:
        out["load1"] = float(load[0])
    return out


@pytest.mark.stb(features=["ir"])
def test_soak_has_no_leak(stb, remote, rig, run_dir, request, record_measurement):
    """Use the box for --soak-minutes; fail with the slope and its interval when MemAvailable leaks."""
    minutes = request.config.getoption("--soak-minutes")
    interval = request.config.getoption("--soak-interval")
    evidence = run_dir / rig.name / slug(request.node.nodeid)
    evidence.mkdir(parents=True, exist_ok=True)
    stb.to("shell")
    t0 = time.monotonic()
    samples: list[tuple[float, dict[str, float]]] = [(0.0, _sample(stb))]
    end = t0 + minutes * 60
    k = 0
    while time.monotonic() < end:
        next_sample = min(end, time.monotonic() + interval)
        while time.monotonic() < next_sample:
            remote.press(KEYS[k % len(KEYS)])
            k += 1
            time.sleep(min(1.0, max(0.0, next_sample - time.monotonic())))
        samples.append((time.monotonic() - t0, _sample(stb)))
    xs = [t for t, _ in samples]
    mem = [s["mem_available_kb"] for _, s in samples]
    (evidence / "soak-samples.json").write_text(json.dumps([{"t": t, **s} for t, s in samples], indent=1))
    if len(samples) < 3:
        raise DeviceFault(f"only {len(samples)} samples in {minutes} min: lengthen the soak", symptom="soak-short")
    fit = trend(xs, mem)
    plot_png(str(evidence / "soak-memory.png"), xs, mem, fit, title="MemAvailable kB")
    record_measurement("mem_slope_kb_per_s", fit.describe("kB/s"))
    record_measurement("keys_pressed", k)
    if fit.decreasing(LEAK_TOLERANCE_KB_PER_S):
        raise DeviceFault(
            f"MemAvailable falls by {-fit.slope:.1f} kB/s, 95 % interval [{-fit.high:.1f}, {-fit.low:.1f}] kB/s "
            f"over {xs[-1] / 60:.1f} min ({fit.n} samples; plot {evidence / 'soak-memory.png'})",
            symptom="memory-leak",
        )
