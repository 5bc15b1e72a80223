"""Firmware update robustness: the power is cut at seeded points of an update (before, during and
after the write, during the first boot of the new image); the box must come up on the old or the
new image every time, never bricked, and a fallback to the old slot must be reported on its console.

After the first (uncut) update, and after any cut the update survived, the box runs the new image:
before the next cut it is put back on the old one with an uncut update to the previous image
(``--previous-image``, built for an emulated rig), so every cut interrupts the same old -> new
update and "came up on the old image" always means the cut stopped the update or the box fell
back: a fallback is told apart from a completed update on every cut."""

from __future__ import annotations

import random
import time

import pytest

from lab.device import REBOOTING
from lab.drivers.serial import ExpectTimeout
from lab.errors import DeviceFault
from lab.firmware import parse_image

FALLBACK = "Falling back to slot"


def _start_update(stb, path, remote: str) -> float:
    """Upload and start ``fwupdate``; returns when the command was sent (monotonic time)."""
    stb.to("shell")
    stb.ssh.wait_for_reconnect(timeout=60)
    stb.ssh.put(path, remote)
    stb.drop_ssh()
    stb.console.drain()
    stb.console.sendline(f"fwupdate {remote}")
    return time.monotonic()


@pytest.mark.stb(features=["ssh"])
def test_power_cuts_during_update_never_brick_the_box(
    stb, power, rig, seed, update_image, previous_image, request, record_measurement
):
    """Seeded cut points over the whole update; each time the box must boot old or new, and report a fallback."""
    image = parse_image(update_image.read_bytes())
    remote = f"{(rig.firmware.upload_dir if rig.firmware else '/data').rstrip('/')}/robustness.img"
    stb.to("shell")
    old = stb.firmware_version()
    # One update without a cut measures the window to cover (command to the new image's login).
    sent = _start_update(stb, update_image, remote)
    stb.console.expect(REBOOTING, timeout=120)
    rebooting = time.monotonic()
    stb.state = "booting"
    stb.login(timeout=stb.boot_timeout)
    window = time.monotonic() - sent
    boot = time.monotonic() - rebooting
    record_measurement("update_seconds", f"{window:.2f}")
    versions = {old, image.version}
    # The old image, to go back to before each cut (without one every cut rewrites the running image).
    prior = previous_image(old) if old != image.version else None
    record_measurement("restores_to", old if prior is not None else "none (no previous image)")
    restores = 0
    # Stratified: one seeded point in each of n equal slices of the update, so every phase (write,
    # reboot, first boot) longer than two slices gets at least one cut whatever the seed.
    n = request.config.getoption("--cut-points")
    rng = random.Random(seed)
    points = [(k + rng.random()) * window / n for k in range(n)]
    bound = boot * 6 + 10  # the trial boots of a bad slot, then the fallback boot, with margin
    outcomes = []
    for i, at in enumerate(points):
        before = stb.firmware_version()
        if prior is not None and before != old:  # back to the old image, uncut
            _start_update(stb, prior, remote)
            stb.console.expect(REBOOTING, timeout=120)
            stb.state = "booting"
            stb.login(timeout=stb.boot_timeout)
            restores += 1
            before = stb.firmware_version()
            if before != old:
                raise DeviceFault(f"an uncut update back to {old} left the box on {before}", symptom="update-failed")
        target = image.version
        sent = _start_update(stb, update_image, remote)
        time.sleep(max(0.0, at - (time.monotonic() - sent)))
        mark = stb.console.mark()
        stb.drop_ssh()
        power.off()
        time.sleep(0.5)
        stb.console.drain()  # what the box said before the cut (a prompt) must not pass for a new boot
        stb.console.new_incident()
        power.on()
        stb.state = "booting"
        # A half-installed slot may panic on its trial boots: that is what A/B fallback is for, so
        # deaths here are evidence, and the verdict is whether the box comes back.
        first = len(stb.console.deaths)
        with stb.console.expecting_death():
            try:
                stb.console.expect(r"U-Boot \d", timeout=30)
                stb.login(timeout=bound)
            except ExpectTimeout:
                seen = "; ".join(sorted({d.symptom for d in stb.console.deaths[first:]})) or "no death string"
                raise DeviceFault(
                    f"bricked: no login prompt within {bound:.0f} s after a power cut {at:.2f} s into an update "
                    f"(cut {i + 1} of {len(points)}; console: {seen})",
                    symptom="update-bricked",
                ) from None
        running = stb.firmware_version()
        said = stb.console.since(mark)
        if running not in versions:
            raise DeviceFault(
                f"runs {running} after a cut at {at:.2f} s (expected one of {sorted(versions)})",
                symptom="update-wrong-image",
            )
        if "trying slot" in said and running != target and FALLBACK not in said:
            raise DeviceFault(
                f"fell back to {running} after a cut at {at:.2f} s into an update to {target} without reporting "
                "it on the console",
                symptom="update-silent-fallback",
            )
        if target == before:
            fate = "same image"
        elif running == target:
            fate = "updated"
        else:
            fate = "fell back" if FALLBACK in said else "kept"
        outcomes.append(f"{at:.2f}s:{before}->{target}:{running} ({fate})")
    record_measurement("cuts", ", ".join(outcomes))
    record_measurement("restores", restores)
