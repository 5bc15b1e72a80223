"""What the emulated box shows on its HDMI output: the screen state and the channel line-up.

The box core (its state machine) produces a :class:`ScreenState` whenever something on screen
changes; the HDMI renderer (:mod:`lab.emulator.hdmi`) turns a state plus the current time into a
picture. The state is an immutable value, so the box can swap it atomically from any thread and
the renderer never sees a half-made change.

Example::

    import time
    from lab.emulator.screen import ScreenState, channel

    ch = channel(3)
    state = ScreenState(kind="live", channel=ch.number, channel_name=ch.name,
                        banner_until=time.monotonic() + BANNER_SECONDS)
    state = state.replace(frozen=True)   # decoder-freeze defect: picture and clock stop

``live_frame`` is the hook for the IPTV path: a callable returning the latest decoded picture of
the tuned multicast channel (BGR ``uint8``, any size) or ``None`` while nothing is decoded yet.
When set, live TV shows that picture (scaled) under the box's own overlays instead of the
synthetic one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

ScreenKind = Literal["off", "boot", "home", "live", "guide", "settings", "standby", "no_channel"]
SCREEN_KINDS: tuple[str, ...] = ("off", "boot", "home", "live", "guide", "settings", "standby", "no_channel")

#: Seconds the channel banner stays up after a zap (docs/wire.md).
BANNER_SECONDS = 4.0

#: Menu entries of the home screen, in order (``menu_index`` points into this).
HOME_ITEMS: tuple[str, ...] = ("Live TV", "TV Guide", "Recordings", "Apps", "Settings")
#: Entries of the settings screen, in order.
SETTINGS_ITEMS: tuple[str, ...] = ("Picture", "Sound", "Network", "Parental control", "System information")

LogoShape = Literal["circle", "square", "triangle", "diamond", "ring", "cross", "hexagon", "star", "bars", "arrow"]

LiveFrameProvider = Callable[[], "np.ndarray | None"]


@dataclass(frozen=True)
class Channel:
    """One channel of the line-up: number, name, its colour scheme (BGR) and logo shape."""

    number: int
    name: str
    background: tuple[int, int, int]
    accent: tuple[int, int, int]
    logo: LogoShape
    programme: str = ""


#: The emulated line-up. Each channel has its own background, accent colour and logo shape, so a
#: template match on the logo corner (or a colour check) tells which channel is on.
CHANNELS: tuple[Channel, ...] = (
    Channel(1, "Lab One", (150, 60, 20), (40, 200, 255), "circle", "Morning News"),
    Channel(2, "Lab Two", (30, 120, 30), (255, 255, 255), "square", "Garden Week"),
    Channel(3, "Sport 3", (20, 30, 150), (0, 230, 230), "triangle", "Football Live"),
    Channel(4, "Movies 4", (90, 20, 90), (120, 255, 120), "diamond", "Classic Film"),
    Channel(5, "Kids 5", (0, 140, 220), (200, 40, 40), "star", "Cartoon Hour"),
    Channel(6, "Docs 6", (90, 90, 20), (60, 60, 255), "hexagon", "Deep Oceans"),
    Channel(7, "Music 7", (40, 40, 40), (255, 0, 255), "ring", "Top 40"),
    Channel(8, "News 8", (130, 0, 0), (0, 0, 255), "cross", "World Tonight"),
    Channel(9, "Weather 9", (160, 140, 60), (20, 20, 20), "bars", "Forecast"),
    Channel(10, "Shop 10", (60, 0, 160), (255, 220, 0), "arrow", "Deals"),
)

_BY_NUMBER = {c.number: c for c in CHANNELS}


def channel(number: int) -> Channel:
    """The channel with this number; numbers outside the line-up get a stable generated scheme.

    >>> channel(3).name
    'Sport 3'
    """
    found = _BY_NUMBER.get(number)
    if found is not None:
        return found
    base = CHANNELS[number % len(CHANNELS)]
    shift = (number * 47) % 256
    bg = tuple((v + shift) % 200 for v in base.background)
    return Channel(number, f"Channel {number}", (bg[0], bg[1], bg[2]), base.accent, base.logo, "")


def channel_numbers() -> list[int]:
    """Numbers of the channels in the line-up, ascending (for CHANNELUP/DOWN wrap-around)."""
    return sorted(_BY_NUMBER)


@dataclass(frozen=True)
class ScreenState:
    """Everything the HDMI output needs to draw one screen.

    kind:             which screen (``off`` = no HDMI signal at all; ``standby`` = black picture)
    channel:          tuned channel number (live TV, banner, guide highlight)
    channel_name:     name shown in the banner ("" = the line-up's name for ``channel``)
    banner_until:     ``time.monotonic()`` until which the channel banner is shown
    tuning_until:     ``time.monotonic()`` until which the decoder is still acquiring the new
                      channel after a zap: black video under the OSD (the banner shows), as a
                      real box's zap time (0 = picture at once)
    frozen:           decoder freeze: the live picture and its clock stop moving (OSD still works)
    frozen_at:        monotonic time the picture froze at (None = the last picture before ``frozen``)
    black:            black-screen defect: all black although powered and "playing"
    menu_index:       highlighted item on home / settings / guide
    firmware_version: shown on the boot splash and the settings screen
    model:            box model shown on the boot splash / settings screen
    boot_progress:    0..1 progress bar on the boot splash
    digits:           digits typed so far for a direct channel number entry ("" = none)
    muted:            show the mute symbol
    live_frame:       optional provider of decoded IPTV pictures (see module docstring)
    """

    kind: ScreenKind = "off"
    channel: int = 1
    channel_name: str = ""
    banner_until: float = 0.0
    tuning_until: float = 0.0
    frozen: bool = False
    frozen_at: float | None = None
    black: bool = False
    menu_index: int = 0
    firmware_version: str = ""
    model: str = ""
    boot_progress: float = 0.0
    digits: str = ""
    muted: bool = False
    live_frame: LiveFrameProvider | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in SCREEN_KINDS:
            raise ValueError(f"unknown screen kind {self.kind!r} (one of {', '.join(SCREEN_KINDS)})")

    def replace(self, **changes: object) -> ScreenState:
        """A copy with some fields changed (``state.replace(kind="guide")``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def powered(self) -> bool:
        """True when the HDMI output carries a signal (anything but ``off``)."""
        return self.kind != "off"

    @property
    def name(self) -> str:
        """The channel name to show: ``channel_name`` or the line-up's name for ``channel``."""
        return self.channel_name or channel(self.channel).name

    def banner_visible(self, now: float) -> bool:
        """True while the channel banner is up at monotonic time ``now``."""
        return now < self.banner_until


__all__ = [
    "BANNER_SECONDS",
    "CHANNELS",
    "HOME_ITEMS",
    "SCREEN_KINDS",
    "SETTINGS_ITEMS",
    "Channel",
    "LiveFrameProvider",
    "ScreenKind",
    "ScreenState",
    "channel",
    "channel_numbers",
]
