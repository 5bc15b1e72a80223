"""One rig as the explorer drives it: a known state, events, and the checks after them.

:class:`RigTarget` wraps an opened :class:`lab.device.Stb` (console, remote, PDU, capture). It can
bring the box to a known state (a power cycle to a logged-in shell and a picture), apply events,
and :meth:`~RigTarget.check` for faults: a death string on the console, a box that does not boot
again after a power event, no signal, a black picture outside standby, a picture that moved on
this screen before and is now frozen. Before a fault is reported the lab's own instruments are
probed (PDU answers, console transport up, capture delivering frames): when they are not healthy
the result is an :class:`~lab.errors.InfraError` naming the rig and the instrument, never a fault.

Example::

    target = RigTarget(stb, regions=load_regions(stb.rig.model))
    target.reset()
    target.apply(Event("key", "KEY_CHANNELUP"))
    finding = target.check()
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lab.errors import DeviceFault, InfraError
from lab.explore.events import Event
from lab.explore.observe import MOTION_LEVEL, Observation, ScreenBook, observe
from lab.video.frame import Frame

MAX_GAP = 30.0  # longest pause an event may ask for (s)


@dataclass
class Finding:
    """A fault seen after a step: its symptom, a message, and the evidence."""

    symptom: str
    message: str
    excerpt: str | None = None
    frame: Frame | None = None
    source: str = "console"  # what saw it: console (death strings, boot) or picture (video checks)


class RigTarget:
    """The explorer's handle on one rig (see module docstring)."""

    def __init__(
        self,
        stb: Any,
        *,
        regions: dict[str, list[int]] | None = None,
        settle: float = 0.6,
        confirm: float = 2.0,
        boot_timeout: float = 60.0,
    ) -> None:
        self.stb = stb
        self.rig = stb.rig_name
        self.book = ScreenBook(regions=dict(regions or {}))
        self.settle = settle
        self.confirm = confirm
        self.boot_timeout = boot_timeout
        self.standby = False
        self.pending_boot = False
        self.last_action = time.monotonic()
        self.last: Observation | None = None
        self.lab_lagging = 0  # looks judged nothing because too few frames came
        video = getattr(stb.rig, "video", None)
        self.fps = float(getattr(video, "fps", 0) or 25.0)

    def min_frames(self, seconds: float) -> int:
        """Frames a look of ``seconds`` must get to judge motion: half the rig's frame rate."""
        return max(3, int(0.5 * self.fps * seconds))

    # -- state -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Power-cycle to a logged-in shell and wait (bounded) for a picture: the known state."""
        stb = self.stb
        stb.console.clear_deaths()  # what the last run printed was judged already
        stb.mark_dirty()
        stb.reboot(hard=True)
        stb.console.clear_deaths()
        self.standby = False
        self.pending_boot = False
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            obs = self._look(self.settle)
            if obs.frames and not obs.black:
                break
        self.last_action = time.monotonic()

    def apply(self, event: Event) -> None:
        """Wait the event's gap (counted from the last action), then do it."""
        wait = min(event.gap, MAX_GAP) - (time.monotonic() - self.last_action)
        if wait > 0:
            time.sleep(wait)
        stb = self.stb
        if event.kind == "key":
            stb.remote.press(event.arg)
            if event.arg == "KEY_POWER" and not self.pending_boot:
                self.standby = not self.standby
        elif event.kind in ("power_cut", "power_cycle"):
            off = float(event.arg or 1.0)
            stb.drop_ssh()
            stb.power.off()
            time.sleep(min(off, MAX_GAP))
            stb.console.drain()  # a prompt printed before the cut must not pass for the new boot
            stb.console.new_incident()
            stb.power.on()
            stb.state = "booting"
            self.standby = False
            self.pending_boot = True
            if event.kind == "power_cycle":
                self._wait_boot()
        elif event.kind == "shell":
            if self.pending_boot:
                self._wait_boot()
            stb.run(event.arg, timeout=15)
        elif event.kind == "wait":
            time.sleep(min(float(event.arg or 0), MAX_GAP))
        self.last_action = time.monotonic()

    def replay(self, events: Sequence[Event]) -> Finding | None:
        """From the known state, apply ``events`` with their timing, then check once."""
        self.reset()
        for event in events:
            self.apply(event)
        return self.check()

    def _wait_boot(self) -> Finding | None:
        from lab.drivers.serial import ExpectTimeout

        try:
            self.stb.login(timeout=self.boot_timeout)
        except (ExpectTimeout, DeviceFault) as exc:
            return Finding("no-boot", f"the box did not reach its login prompt within {self.boot_timeout:.0f} s: {exc}")
        finally:
            self.pending_boot = False
        return None

    # -- looking -------------------------------------------------------------------------------

    def _frames(self, seconds: float) -> list[Frame]:
        return list(self.stb.capture.frames(timeout=seconds))

    def _look(self, seconds: float) -> Observation:
        obs = observe(self._frames(seconds), self.book)
        self.last = obs
        return obs

    def check(self) -> Finding | None:
        """Look for a fault now (see module docstring); None when the box looks healthy."""
        finding = self._wait_boot() if self.pending_boot else None
        if finding is None:
            # The picture first: looking takes a moment, so death lines printed just after the
            # last event (a panic's trace) are on the console when it is read, and they win.
            picture = self._picture()
            finding = self._death() or picture
        if finding is not None:
            self.probe_lab()
            if finding.excerpt is None:
                finding.excerpt = self.stb.console.tail(30)
        return finding

    def _death(self) -> Finding | None:
        deaths = self.stb.console.clear_deaths()
        if not deaths:
            return None
        ev = deaths[0]
        return Finding(ev.symptom, f"the console printed {ev.line.strip()[:200]!r}", excerpt=ev.excerpt())

    def _picture(self) -> Finding | None:
        obs = self._look(self.settle)
        if self.standby:
            return None
        if not obs.frames:
            again = self._look(self.confirm)
            if not again.frames:
                return Finding(
                    "no-signal",
                    f"no frame from the HDMI capture for {self.settle + self.confirm:.1f} s",
                    source="picture",
                )
            return None
        if obs.black:
            again = self._look(self.confirm)
            if again.frames and again.black:
                return Finding(
                    "black-screen",
                    f"black picture for {self.settle + self.confirm:.1f} s outside standby",
                    frame=again.last,
                    source="picture",
                )
            return None
        if obs.screen in self.book.moving and obs.motion < MOTION_LEVEL:
            again = self._look(self.confirm)
            if again.frames < self.min_frames(self.confirm):
                # The capture (or an emulated box) did not keep up: a still picture is not evidence.
                self.lab_lagging += 1
                return None
            if again.screen in self.book.moving and again.motion < MOTION_LEVEL:
                return Finding(
                    "video-frozen",
                    f"the picture of {again.screen} moved before and stood still for {self.confirm:.1f} s "
                    f"(motion {again.motion:.2f} < {MOTION_LEVEL})",
                    frame=again.last,
                    source="picture",
                )
        return None

    def probe_lab(self) -> None:
        """Raise InfraError naming the instrument when the lab (not the box) is at fault."""
        stb = self.stb
        try:
            stb.power.status()
        except Exception as exc:  # any failure of the PDU is the lab's
            raise InfraError(f"PDU does not answer: {exc}", rig=self.rig, instrument="power") from exc
        if not getattr(stb.console, "connected", True):
            raise InfraError("console transport is down", rig=self.rig, instrument="serial")
        if str(getattr(stb.capture, "signal", "")) == "lost":
            raise InfraError("the HDMI capture lost its encoder", rig=self.rig, instrument="video")

    def expect_no_fault(self) -> None:
        """For written reproducers: raise DeviceFault with the finding's symptom when there is one."""
        finding = self.check()
        if finding is not None:
            raise DeviceFault(finding.message, symptom=finding.symptom)

    def close(self) -> None:
        """Nothing to release (the Stb owns the drivers); kept for symmetry."""
        with contextlib.suppress(Exception):
            self.stb.console.clear_deaths()
