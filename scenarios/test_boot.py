"""Boot: from power off to a logged-in shell, and into the bootloader."""

from __future__ import annotations

import re
import time

import pytest

from lab.errors import DeviceFault

BOOT_BOUND_S = 45.0


@pytest.mark.stb(features=["power"])
def test_boot_to_shell(stb, rig, record_measurement):
    """Power-cycle the box: it reaches a shell within the bound and identifies itself."""
    stb.to("off")
    t0 = time.monotonic()
    stb.to("shell")
    boot_s = time.monotonic() - t0
    record_measurement("boot_seconds", f"{boot_s:.2f}")
    if boot_s > BOOT_BOUND_S:
        raise DeviceFault(f"boot to shell took {boot_s:.1f} s (bound {BOOT_BOUND_S:.0f} s)", symptom="slow-boot")
    version = stb.firmware_version()
    assert re.fullmatch(r"[\w.+-]+", version), f"odd firmware version {version!r}"
    diag = stb.diag()
    if diag.get("model") != rig.model:
        raise DeviceFault(
            f"box reports model {diag.get('model')!r}, rig file says {rig.model!r}", symptom="wrong-model"
        )
    assert diag.get("serial"), "diag --json has no serial number"


@pytest.mark.stb(features=["bootloader"])
def test_bootloader_then_boot(stb):
    """Interrupt autoboot into the bootloader prompt, ask its version, then boot on to the shell."""
    stb.to("bootloader")
    out = stb.console.bootloader_run("version")
    text = getattr(out, "output", out)
    assert "U-Boot" in str(text), f"bootloader `version` printed {str(text)[:200]!r}"
    stb.to("shell")
    assert stb.run("true").exit_code == 0
