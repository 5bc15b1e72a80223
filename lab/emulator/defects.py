"""Firmware defects of the emulated box, keyed by firmware version (``emulate.defects``).

Only the emulator reads the catalogue. Probabilistic defects draw from the box's seeded
generator, so a reproduction rate over n runs is a measurement, not luck.

Kinds:

* ``decoder_freeze`` -- after ``after_zaps`` channel changes the live picture stops moving;
* ``black_after_resume`` -- resuming from standby leaves a black picture with ``probability``;
* ``kernel_panic`` -- after the IR ``key_sequence`` the kernel oopses, panics, the watchdog resets;
* ``memory_leak`` -- each zap leaks ``kb_per_zap`` kB (visible in /proc/meminfo) until the OOM
  killer kills the app and the supervisor reboots the box;
* ``sshd_dies`` -- the SSH daemon segfaults ``after_seconds`` after boot (until the next boot);
* ``boot_fail`` -- the firmware panics during boot; an A/B update falls back after 3 tries;
* ``key_window`` -- a short IR key sequence pressed within a time window freezes the picture, turns
  it black or panics the kernel, with ``probability`` (a seeded rare fault for ``stblab explore``);
* ``power_storm`` -- ``cuts`` power cuts in a row during boot leave the next boot's HDMI output black;
* ``hog_sensitive`` -- the UI app segfaults (and the box reboots) while a memory hog of at least
  ``above_mb`` runs (the shell's ``hog mem``; lab.emulator.box.hogs).

The same runtime thread prints the occasional unsolicited kernel message on a healthy box too.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from lab.emulator import bootlog
from lab.emulator.config import (
    BlackAfterResume,
    BootFail,
    DecoderFreeze,
    HogSensitive,
    KernelPanic,
    KeyWindow,
    MemoryLeak,
    PowerStorm,
    SshdDies,
)

if TYPE_CHECKING:
    from lab.emulator.box import Box

OOM_FREE_KB = 40_000  # the OOM killer fires below this (memory-leak defect)

_NOISE = (
    "usb 1-1: new high-speed USB device number 2 using ehci-platform",
    "eth0: Link is Up - 1Gbps/Full - flow control rx/tx",
    "stb_hdmi: HDCP 1.4 authenticated",
    "dvb_core: demux0: TS continuity restored",
    "random: crng init done",
    "mmc0: cache flush done",
)


def _norm(key: str) -> str:
    key = key.strip().upper()
    return key if key.startswith("KEY_") else "KEY_" + key


class Defects:
    """The defects active for the running firmware, and their triggers."""

    def __init__(self, box: Box) -> None:
        self.box = box
        self.active: list[Any] = []
        self.frozen = False
        self.black = False
        self._gen = 0
        self._lock = threading.Lock()
        self.fired: list[str] = []
        self._timed_keys: deque[tuple[float, str]] = deque(maxlen=32)
        self.boot_cuts = 0  # power cuts in a row, each during a boot (power_storm)

    def _of(self, kind: type) -> list[Any]:
        return [d for d in self.active if isinstance(d, kind)]

    def boot_fails(self, version: str) -> bool:
        """True when this firmware version never finishes booting."""
        return any(isinstance(d, BootFail) for d in self.box.settings.defects_for(version))

    def start(self, version: str) -> None:
        """The box finished booting ``version``: arm its defects and the runtime ticker."""
        with self._lock:
            self._gen += 1
            gen = self._gen
            self.active = self.box.settings.defects_for(version)
            self.frozen = False
            self.black = False
            self._timed_keys.clear()
            storms = self._of(PowerStorm)
            if storms and self.boot_cuts >= storms[0].cuts:
                self.black = True
                self.fired.append("power_storm")
            self.boot_cuts = 0
        if self.black:
            self.box.kmsg("stb_hdmi: boot env CRC mismatch, HDMI PHY left uninitialised", console=False)
        threading.Thread(target=self._ticker, args=(gen,), name="box-runtime", daemon=True).start()

    def stop(self) -> None:
        """Power off, reboot or crash: the runtime ticker ends."""
        with self._lock:
            self._gen += 1
            self.frozen = False
            self.black = False

    def _fire(self, kind: str) -> None:
        self.fired.append(kind)
        self.box.state.last_events = (self.box.state.last_events + [f"defect {kind}"])[-20:]

    def _ticker(self, gen: int) -> None:
        box = self.box
        timings = box.settings.boot
        started = time.monotonic()
        next_noise = started + (box.noise_rng.expovariate(1 / timings.kmsg_interval) if timings.kmsg_interval else 1e18)
        sshd = self._of(SshdDies)
        leaks = [d for d in self._of(MemoryLeak) if d.kb_per_second]
        owed = 0.0  # kB leaked but not yet whole
        last = started
        while gen == self._gen:
            time.sleep(0.1)
            now = time.monotonic()
            if gen != self._gen or box.phase != "running":
                return
            if sshd and box.sshd_alive and now - started >= sshd[0].after_seconds:
                box.sshd_alive = False
                box._drop_ssh()
                self._fire("sshd_dies")
                box.kmsg("sshd[301]: segfault at 0 ip b6e1c2a4 sp be8f4c10 error 4 in libc.so.6[b6da0000+120000]")
            if leaks:
                # Fractions carry over: a slow leak (a few kB/s) must not round to nothing every tick.
                owed += sum(d.kb_per_second for d in leaks) * (now - last)
                box.leaked_kb += int(owed)
                owed -= int(owed)
                self._check_oom()
            if now >= next_noise:
                box.kmsg(_NOISE[box.noise_rng.randrange(len(_NOISE))])
                next_noise = now + box.noise_rng.expovariate(1 / timings.kmsg_interval)
            last = now

    def on_zap(self) -> None:
        """A channel change happened (IR or ``tune``)."""
        box = self.box
        for d in self._of(DecoderFreeze):
            if box.zaps >= d.after_zaps and not self.frozen:
                self.frozen = True
                self._fire("decoder_freeze")
                box.kmsg("dvb_core: video decoder 0: stalled (no picture for 500 ms)", console=False)
        for d in self._of(MemoryLeak):
            box.leaked_kb += d.kb_per_zap
        if self._of(MemoryLeak):
            self._check_oom()

    def _check_oom(self) -> None:
        box = self.box
        _, free = box.memory()
        if free < OOM_FREE_KB and box.phase == "running":
            self._fire("memory_leak")
            app_kb = 180_000 + box.leaked_kb
            lines = bootlog.oom_lines(box.settings.total_memory_kb, app_kb)
            lines.append("stb-supervisor: stb_app killed by OOM, rebooting")
            box.crash("oom", lines)

    def on_hog(self, mem_kb: int) -> None:
        """A third-party app now holds ``mem_kb`` of memory: a hog-sensitive UI app dies of it."""
        box = self.box
        for d in self._of(HogSensitive):
            if mem_kb >= d.above_mb * 1024 and box.phase == "running":
                self._fire("hog_sensitive")
                box.crash(
                    "app-crash",
                    [
                        "stb_app[412]: segfault at 0 ip b6c21a40 sp bead3e08 error 6 in libstbui.so[b6c00000+90000]",
                        "stb-supervisor: stb_app died (signal 11), rebooting",
                    ],
                )
                return

    def on_power_cut(self, booting: bool) -> None:
        """The outlet went off; ``booting`` when the box had not reached its login prompt."""
        self.boot_cuts = self.boot_cuts + 1 if booting else 0

    def _key_window(self, key: str) -> bool:
        """Fire a ``key_window`` defect whose sequence just completed; True when the box crashed."""
        box = self.box
        now = time.monotonic()
        self._timed_keys.append((now, key))
        for d in self._of(KeyWindow):
            seq = [_norm(k) for k in d.keys]
            tail = list(self._timed_keys)[-len(seq) :]
            if [k for _, k in tail] != seq or now - tail[0][0] > d.within:
                continue
            if box.rng.random() >= d.probability:
                continue
            self._fire(f"key_window:{d.effect}")
            if d.effect == "panic":
                box.crash("panic", bootlog.oops_lines(box.model, box.kernel_release, box.noise_rng))
                return True
            if d.effect == "freeze":
                self.frozen = True
                box.kmsg("dvb_core: video decoder 0: stalled (no picture for 500 ms)", console=False)
                box._set_screen(frozen=True, frozen_at=now)
            else:
                self.black = True
                box.kmsg("stb_hdmi: HDMI PHY lost lock, output disabled", console=False)
                box._set_screen(black=True)
        return False

    def on_key(self, key: str) -> bool:
        """A decoded IR key; True when a defect consumed it (the box crashed)."""
        box = self.box
        if self._of(KeyWindow) and self._key_window(_norm(key)):
            return True
        recent = [_norm(k) for k in box.recent_keys()]
        for d in self._of(KernelPanic):
            seq = [_norm(k) for k in d.key_sequence]
            if recent[-len(seq) :] == seq:
                self._fire("kernel_panic")
                box.crash("panic", bootlog.oops_lines(box.model, box.kernel_release, box.noise_rng))
                return True
        return False

    def on_resume(self) -> None:
        """Resumed from standby: maybe the HDMI output stays black."""
        for d in self._of(BlackAfterResume):
            if self.box.rng.random() < d.probability:
                self.black = True
                self._fire("black_after_resume")
                self.box.kmsg("stb_hdmi: resume: PLL lock timeout, output disabled", console=False)
                return
        self.black = False


__all__ = ["Defects"]
