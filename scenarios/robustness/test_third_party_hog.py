"""Third-party software: a background app hogs the CPU, memory or file descriptors, or crashes and is
restarted in a loop, while the user-facing checks run (zap with the banner within a bound, moving
picture, the remote still answering); after the hog stops the box must be as before.

The hog is started over the shell with the profile's ``hog`` action (``hog cpu|mem MB|fds N|
crashloop SECONDS``, ``hog stop``). The crashing app's own segfault lines are expected; any other
death string (the UI app killed, a kernel panic, an OOM kill) is the fault this scenario looks for.
"""

from __future__ import annotations

import contextlib
import re
import statistics
import time
from typing import Any

import pytest

from lab.errors import DeviceFault, TestError

HOGS = {
    "cpu": "hog cpu 2",
    "mem": "hog mem 256",
    "fds": "hog fds 900",
    "crashloop": "hog crashloop 0.5",
}
ZAPS = 3
BANNER_BOUND_S = 3.0
MOTION_BOUND_S = 3.0
RECOVERED_MEM_KB = 8 * 1024  # MemAvailable after the hog stops, within this of before
UI_APP = "stb_app"


def available_kb(stb: Any) -> int:
    """MemAvailable from /proc/meminfo, in kB."""
    m = re.search(r"MemAvailable:\s+(\d+)", stb.run("cat /proc/meminfo").check().output)
    if not m:
        raise DeviceFault("/proc/meminfo has no MemAvailable", symptom="bad-meminfo")
    return int(m.group(1))


def _ps(stb: Any) -> str:
    return stb.run("ps").check().output


def _wait_restarted(stb: Any, app: str, pid: str, timeout: float = 5.0) -> None:
    """The supervisor brought ``app`` back under another pid (bounded poll of ps)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [ln.split() for ln in _ps(stb).splitlines() if app in ln]
        if any(r and r[0] != pid for r in rows):
            return
        if time.monotonic() > deadline:
            raise DeviceFault(f"{app} crashed and was not restarted within {timeout:.0f} s", symptom="no-restart")
        time.sleep(0.2)


def _user_checks(stb: Any, remote: Any, tv: Any, channel: int) -> tuple[int, list[float]]:
    """Zap up ZAPS times (banner within the bound, moving picture), then INFO must redraw the banner."""
    times = []
    for _ in range(ZAPS):
        expected = tv.next_channel(channel)
        pressed = time.monotonic()
        remote.press("KEY_CHANNELUP")
        times.append(tv.expect_banner(expected, timeout=BANNER_BOUND_S, since=pressed).seconds)
        tv.expect_motion(timeout=MOTION_BOUND_S)
        channel = expected
    pressed = time.monotonic()
    remote.press("KEY_INFO")  # the remote still answers: the banner comes back on request
    tv.expect_banner(channel, timeout=BANNER_BOUND_S, since=pressed)
    return channel, times


@pytest.mark.stb(features=["ir", "hdmi"])
@pytest.mark.parametrize("kind", list(HOGS))
def test_the_box_stays_usable_while_a_third_party_app_hogs_it(kind, shell, stb, remote, tv, record_measurement):
    """Start the ``kind`` hog, run the user-facing checks, stop it; only the hog's own crashes are allowed."""
    if UI_APP not in _ps(stb):
        raise TestError(f"{UI_APP} is not running before the hog starts: the box is not in a known state")
    mem_before = available_kb(stb)
    channel = tv.channels[0]
    stb.run(f"tune {channel}").check()
    tv.expect_banner(channel, timeout=BANNER_BOUND_S + 2)
    failure: Exception | None = None
    app = ""
    with stb.console.expecting_death() as seen:
        try:
            started = stb.run(HOGS[kind]).check().output
            m = re.search(r"started \w+ pid (\d+): (\S+)", started)
            if not m:
                raise TestError(f"'{HOGS[kind]}' did not report a started app: {started.strip()[-200:]!r}")
            pid, app = m.group(1), m.group(2).rsplit("/", 1)[-1]
            if not re.search(rf"^\s*{pid}\s.*{re.escape(app)}", _ps(stb), re.MULTILINE):
                raise TestError(f"the {kind} hog (pid {pid}) is not in ps right after it started")
            channel, times = _user_checks(stb, remote, tv, channel)
            record_measurement("zap_seconds_median", f"{statistics.median(times):.3f}")
            record_measurement("zap_seconds_max", f"{max(times):.3f}")
            if kind == "crashloop":  # evidence that the loop ran: the app crashed and came back
                stb.console.expect(rf"{re.escape(app)}\[\d+\]: segfault at", timeout=5)
                _wait_restarted(stb, app, pid)
            if UI_APP not in _ps(stb):
                raise DeviceFault(f"{UI_APP} is gone from ps while the {kind} hog runs", symptom="ui-app-died")
        except Exception as exc:  # a death string seen meanwhile explains it better (below)
            failure = exc
        finally:
            with contextlib.suppress(DeviceFault):  # a box that died has no hog left to stop
                stb.run("hog stop", timeout=10)
    own = [e for e in seen if e.symptom == "segfault" and app and f"{app}[" in e.line]
    other = [e for e in seen if e not in own]
    record_measurement("hog_crashes_seen", len(own))
    if other:
        raise DeviceFault(
            f"while the {kind} hog ran: {other[0].symptom}: {other[0].line.strip()}", symptom=other[0].symptom
        )
    if failure is not None:
        raise failure
    if kind == "crashloop" and not own:
        raise TestError("the crash loop printed no segfault: nothing was tested")
    # Recovery: the hog is gone, memory is back, and the UI still zaps.
    ps = _ps(stb)
    if app in ps or UI_APP not in ps:
        raise DeviceFault(f"after 'hog stop': ps still shows {app} or lost {UI_APP}", symptom="no-recovery")
    drop = mem_before - available_kb(stb)
    record_measurement("mem_not_recovered_kb", drop)
    if drop > RECOVERED_MEM_KB:
        raise DeviceFault(f"MemAvailable still {drop} kB below its level before the hog", symptom="no-recovery")
    _user_checks(stb, remote, tv, channel)
