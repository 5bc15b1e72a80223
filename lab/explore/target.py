"""One rig as the explorer drives it: a known state, events, and the checks after them.

:class:`RigTarget` wraps an opened :class:`lab.device.Stb` (console, remote, PDU, capture). It can
bring the box to a known state (a power cycle to a logged-in shell and a picture), apply events,
and :meth:`~RigTarget.check` for faults: a death string on the console, a box that does not boot
again after a power event, no signal, a black picture outside standby, a picture that moved on
this screen before and is now frozen. Before a fault is reported the lab's own instruments are
probed (PDU answers, console transport up, capture delivering frames): when they are not healthy
the result is an :class:`~lab.errors.InfraError` naming the rig and the instrument, never a fault.

With ``network`` (the rig's :class:`~lab.network.impair.shaper.Shaper`, or a pytest ``net``
session) ``net`` events switch the rig's impairment profile; every :meth:`~RigTarget.reset` puts
the clean profile back first, so each episode and each shrink candidate starts from a clean link.

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

from lab.errors import DeviceFault, InfraError, TestError
from lab.explore.events import Event
from lab.explore.observe import CHANGING, MOTION_LEVEL, Observation, ScreenBook, observe
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
        settle: float = 0.35,
        confirm: float = 2.0,
        boot_timeout: float = 60.0,
        reboot: str = "auto",
        network: Any | None = None,
    ) -> None:
        if reboot not in ("auto", "power"):
            raise ValueError(f"reboot must be 'auto' or 'power', got {reboot!r}")
        self.stb = stb
        self.rig = stb.rig_name
        self.book = ScreenBook(regions=dict(regions or {}))
        self.settle = settle
        self.confirm = confirm
        self.boot_timeout = boot_timeout
        self.reboot = reboot
        self.network = network  # has .apply(profile name); None: the rig has no shaper
        self.net_profile = "clean"
        self.healthy = False  # the last check found nothing and the shell answered: a soft reboot will do
        self.soft_reboots = 0
        self.power_cycles = 0
        self.standby = False
        self.pending_boot = False
        self.last_action = time.monotonic()
        self.last: Observation | None = None
        self.lab_lagging = 0  # looks judged nothing because too few frames came
        video = getattr(stb.rig, "video", None)
        self.fps = float(getattr(video, "fps", 0) or 25.0)
        # The explorer times its keys itself (an event's gap): the remote's own pacing between
        # presses (0.3 s by default) would turn every hostile double press into a polite one.
        remote = getattr(stb, "remote", None) if getattr(stb.rig, "ir", None) is not None else None
        if remote is not None and hasattr(remote, "inter_press_delay"):
            remote.inter_press_delay = 0.0

    def min_frames(self, seconds: float) -> int:
        """Frames a look of ``seconds`` must get to judge motion: half the rig's frame rate."""
        return max(3, int(0.5 * self.fps * seconds))

    # -- state -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Reboot to a logged-in shell and wait (bounded) for a picture: the known state.

        A box that looked healthy at the last check is rebooted over its console (``reboot="auto"``);
        after a fault, a power event, or when the console reboot does not bring the shell back,
        the PDU power-cycles it. Either way every defect state of the last run is gone.
        """
        from lab.drivers.serial import ExpectTimeout

        stb = self.stb
        self._clean_network()
        stb.console.clear_deaths()  # what the last run printed was judged already
        soft = self.reboot == "auto" and self.healthy and not self.pending_boot and str(stb.state) == "shell"
        self.healthy = False
        done = False
        if soft:
            try:
                stb.reboot(hard=False)
                self.soft_reboots += 1
                done = True
            except (ExpectTimeout, DeviceFault, TestError):
                done = False
        if not done:
            stb.mark_dirty()
            stb.reboot(hard=True)
            self.power_cycles += 1
        stb.console.clear_deaths()
        self.standby = False
        self.pending_boot = False
        self._wait_picture(10.0)
        self.last_action = time.monotonic()

    def _clean_network(self) -> None:
        """The clean link again (a known state includes the network)."""
        if self.network is not None:
            self.network.apply("clean")
        self.net_profile = "clean"

    def _wait_picture(self, timeout: float) -> None:
        """Until a frame that is not black arrives (bounded): the UI is up."""
        from lab.explore.observe import BLACK_LUMA, max_grey

        for frame in self.stb.capture.frames(timeout=timeout):
            if max_grey(frame) > BLACK_LUMA:
                return

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
        elif event.kind == "net":
            if self.network is None:
                raise TestError(f"rig {self.rig}: a network profile event ({event.arg}) needs the rig's network shaper")
            self.network.apply(event.arg or "clean")
            self.net_profile = event.arg or "clean"
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

    def _look(self, seconds: float, *, settle: int = 0) -> Observation:
        """Frames for ``seconds``; while the screen is still changing (a menu sliding in, a banner
        going), up to ``settle`` more looks, so that only a settled screen is named and judged."""
        for _ in range(settle):
            obs = observe(self._frames(seconds), self.book, settled_only=True)
            if obs.screen != CHANGING:
                self.last = obs
                return obs
        obs = observe(self._frames(seconds), self.book)
        self.last = obs
        return obs

    def check(self, *, expect_moving: bool = False) -> Finding | None:
        """Look for a fault now (see module docstring); None when the box looks healthy.

        ``expect_moving``: the screen now must show a moving picture even when this target has not
        seen it move (a written reproducer of a frozen picture knows the screen it ends on moves).
        """
        finding = self._wait_boot() if self.pending_boot else None
        if finding is None:
            # The picture first: looking takes a moment, so death lines printed just after the
            # last event (a panic's trace) are on the console when it is read, and they win.
            picture = self._picture(expect_moving)
            finding = self._death() or picture
        if finding is not None:
            self.probe_lab()
            if finding.excerpt is None:
                finding.excerpt = self.stb.console.tail(30)
        self.healthy = finding is None
        return finding

    def _death(self) -> Finding | None:
        deaths = self.stb.console.clear_deaths()
        if not deaths:
            return None
        ev = deaths[0]
        return Finding(ev.symptom, f"the console printed {ev.line.strip()[:200]!r}", excerpt=ev.excerpt())

    def _picture(self, expect_moving: bool = False) -> Finding | None:
        obs = self._look(self.settle, settle=2)
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
        moves = self.book.moving if not expect_moving else {*self.book.moving, obs.screen}
        if obs.screen in moves and obs.motion < MOTION_LEVEL:
            again = self._look(self.confirm)
            if again.frames < self.min_frames(self.confirm):
                # The capture (or an emulated box) did not keep up: a still picture is not evidence.
                self.lab_lagging += 1
                return None
            region = self._region(again)
            if (
                again.screen in moves | self.book.moving
                and again.motion < MOTION_LEVEL
                and (expect_moving or (region is not None and self.book.fits(str(again.screen), region)))
            ):
                return Finding(
                    "video-frozen",
                    f"the picture of {again.screen} moved before and stood still for {self.confirm:.1f} s "
                    f"(motion {again.motion:.2f} < {MOTION_LEVEL})",
                    frame=again.last,
                    source="picture",
                )
        return None

    def _region(self, obs: Observation) -> Any:
        """The motion-region cells of a look (what :meth:`ScreenBook.fits` compares)."""
        if obs.cells is None:
            return None
        from lab.explore.observe import GRID, motion_region

        rows, cols = motion_region(self.book.regions, GRID)
        return obs.cells[rows, cols]

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

    def expect_no_fault(self, *, moving: bool = False) -> None:
        """For written reproducers: raise DeviceFault with the finding's symptom when there is one
        (``moving``: the screen the replay ends on must show a moving picture)."""
        finding = self.check(expect_moving=moving)
        if finding is not None:
            raise DeviceFault(finding.message, symptom=finding.symptom)

    def close(self) -> None:
        """Nothing to release (the Stb owns the drivers); kept for symmetry."""
        with contextlib.suppress(Exception):
            self.stb.console.clear_deaths()
