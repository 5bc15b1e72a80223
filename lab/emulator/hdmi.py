"""The emulated box's HDMI picture: :class:`ScreenState` + time -> BGR frame.

Rendering is cheap by construction: every static part (channel backgrounds, logos, banners,
menu screens, the boot splash, the no-signal screen) is drawn once per output size and cached;
a live-TV frame is a copy of the channel's background plus a few small moving parts (a scrolling
band, a bouncing ball, the clock) pasted in. A 720p live frame costs well under a millisecond
to compose; JPEG encoding dominates. Measure on this machine with ``python benchmarks/hdmi_render.py``
(compares against the same renderer with its cache disabled, i.e. drawing everything per frame).

Nothing here calls OpenCV for the box's own screens: shapes and text come from
:mod:`lab.emulator.raster` (glyphs kept in the repository), so the picture is the same whatever
OpenCV the lab host has installed.

Layout is designed on a 1280x720 canvas and scaled to the output size, so every resolution
shows the same screens.

Example::

    import time
    from lab.emulator.hdmi import Renderer
    from lab.emulator.screen import ScreenState

    r = Renderer(1280, 720)
    img = r.render(ScreenState(kind="live", channel=2), time.monotonic())   # (720, 1280, 3) uint8

The picture returned may be shared with the renderer's cache: treat it as read-only.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

from lab.emulator import raster
from lab.emulator.screen import CHANNELS, HOME_ITEMS, SETTINGS_ITEMS, Channel, ScreenState, channel

_FONT = "duplex"
_FONT_PLAIN = "simplex"
_WHITE = (255, 255, 255)
_GREY = (170, 170, 170)
_MENU_BG = (60, 30, 20)
_HIGHLIGHT = (0, 165, 255)

# Regions of the live picture on the 1280x720 design canvas: (x0, y0, x1, y1).
CLOCK_BOX = (40, 30, 300, 90)
LOGO_BOX = (1080, 30, 1240, 130)
BALL_AREA = (40, 140, 1240, 290)
BAND_BOX = (0, 300, 1280, 420)
BANNER_BOX = (40, 560, 1240, 690)
DIGITS_BOX = (560, 130, 720, 220)

_BAND_SPEED = 240.0  # design px per second
_BALL_RADIUS = 36


def _lerp(a: tuple[int, int, int], b: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return (int(a[0] + (b[0] - a[0]) * f), int(a[1] + (b[1] - a[1]) * f), int(a[2] + (b[2] - a[2]) * f))


def _darker(c: tuple[int, int, int], f: float = 0.45) -> tuple[int, int, int]:
    return (int(c[0] * f), int(c[1] * f), int(c[2] * f))


def logo_image(ch: Channel, width: int = 160, height: int = 100) -> np.ndarray:
    """The channel's logo tile (as drawn in the top-right corner of live TV at this size).

    Scenarios and tests use it as a template-match reference for "which channel is on".
    """
    img = np.empty((height, width, 3), np.uint8)
    img[:] = _darker(ch.background, 0.35)
    cx, cy = width // 2, height // 2
    r = int(min(width, height) * 0.36)
    col = ch.accent
    shape = ch.logo
    if shape == "circle":
        raster.disc(img, (cx, cy), r, col, antialias=True)
    elif shape == "square":
        raster.fill_rect(img, (cx - r, cy - r), (cx + r, cy + r), col)
    elif shape == "triangle":
        raster.polygon(img, [(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], col)
    elif shape == "diamond":
        raster.polygon(img, [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], col)
    elif shape == "ring":
        raster.ring(img, (cx, cy), r, col, max(3, r // 3))
    elif shape == "cross":
        t = max(3, r // 3)
        raster.fill_rect(img, (cx - r, cy - t), (cx + r, cy + t), col)
        raster.fill_rect(img, (cx - t, cy - r), (cx + t, cy + r), col)
    elif shape == "hexagon":
        ang = np.deg2rad(np.arange(0, 360, 60))
        raster.polygon(img, [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in ang], col)
    elif shape == "star":
        ang = np.deg2rad(np.arange(-90, 270, 36))
        rad = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        raster.polygon(img, [(cx + d * np.cos(a), cy + d * np.sin(a)) for a, d in zip(ang, rad, strict=True)], col)
    elif shape == "bars":
        w = max(2, r // 3)
        for i, h in enumerate((0.5, 1.0, 0.75)):
            x = cx - r + i * (w + w // 2) + w
            raster.fill_rect(img, (x, cy + r - int(2 * r * h)), (x + w, cy + r), col)
    else:  # arrow
        raster.polygon(
            img,
            [(cx - r, cy - r // 3), (cx, cy - r // 3), (cx, cy - r), (cx + r, cy), (cx, cy + r), (cx, cy + r // 3)]
            + [(cx - r, cy + r // 3)],
            col,
        )
    # The channel number in the logo's corner makes it readable for people too.
    raster.text(img, str(ch.number), (4, height - 6), height / 220, _WHITE)
    return img


class Renderer:
    """Draws screens for one output size; keeps its own cache of static parts.

    Not thread-safe: one renderer per producer thread (the MJPEG server has one).
    """

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        *,
        cache_size: int = 96,
        wall_offset: float | None = None,
        localtime: Callable[[float], time.struct_time] = time.localtime,
    ) -> None:
        if width < 160 or height < 90:
            raise ValueError(f"HDMI resolution {width}x{height} too small (at least 160x90)")
        self.width = width
        self.height = height
        self._sx = width / 1280
        self._sy = height / 720
        self._cache: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._black = np.zeros((height, width, 3), np.uint8)
        self._black.setflags(write=False)
        self._video_t: float | None = None  # last video time rendered while not frozen
        # Wall clock = monotonic time + offset; fixed offsets and time.gmtime make screens reproducible.
        self._wall_offset = time.time() - time.monotonic() if wall_offset is None else wall_offset
        self._localtime = localtime
        self._last_live: np.ndarray | None = None  # last decoded IPTV picture, scaled
        self._live_buf = np.empty((height, width, 3), np.uint8)

    # -- geometry helpers -------------------------------------------------------------------
    def _box(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        x0, y0, x1, y1 = box
        return (round(x0 * self._sx), round(y0 * self._sy), round(x1 * self._sx), round(y1 * self._sy))

    def _pt(self, x: float, y: float) -> tuple[int, int]:
        return (round(x * self._sx), round(y * self._sy))

    def _fs(self, size: float) -> float:
        return size * self._sy

    def _th(self, thickness: int) -> int:
        return max(1, round(thickness * self._sy))

    def _text(
        self,
        img: np.ndarray,
        text: str,
        x: float,
        y: float,
        size: float,
        color: tuple[int, int, int] = _WHITE,
        font: str = _FONT,
    ) -> None:
        raster.text(img, text, self._pt(x, y), self._fs(size), color, font)

    def _cached(self, key: Hashable, make) -> np.ndarray:
        img = self._cache.get(key)
        if img is None:
            img = make()
            img.setflags(write=False)
            self._cache[key] = img
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return img

    # -- public -----------------------------------------------------------------------------
    def content_key(self, state: ScreenState, now: float) -> Hashable | None:
        """A key equal for two calls exactly when they render the same picture; None if it moves.

        The MJPEG server uses it to reuse the last JPEG for static screens (menus, standby).
        """
        if state.kind == "off" or state.black or state.kind == "standby":
            return ("black",)
        banner = state.banner_visible(now)
        if state.kind == "live":
            if now < state.tuning_until:
                return ("tuning", state.channel, state.name, banner, state.digits, state.muted)
            if not state.frozen:
                return None
            if state.live_frame is not None:
                return None  # frozen IPTV picture: cheap to re-encode, key not worth tracking
            vt = self._frozen_time(state, now)
            return ("live-frozen", state.channel, state.name, vt, banner, state.digits, state.muted)
        if state.kind == "boot":
            return ("boot", state.firmware_version, state.model, round(state.boot_progress * 50))
        minute = int((now + self._wall_offset) // 60)
        return (state.kind, state.channel, state.name, state.menu_index, state.firmware_version, state.model,
                banner, state.digits, minute)  # fmt: skip

    def render(self, state: ScreenState, now: float | None = None) -> np.ndarray:
        """The picture for ``state`` at monotonic time ``now`` (default: now), BGR uint8 HxWx3."""
        now = time.monotonic() if now is None else now
        if state.kind in ("off", "standby") or state.black:
            return self._black
        if state.kind == "live":
            return self._live(state, now)
        if state.kind == "boot":
            return self._cached(
                ("boot", state.firmware_version, state.model, round(state.boot_progress * 50)),
                lambda: self._boot(state),
            )
        if state.kind == "no_channel":
            base = self._cached(("nochan", state.channel, state.name), lambda: self._no_channel(state))
            return self._osd(base, state, now, copy=True)
        minute = int((now + self._wall_offset) // 60)
        if state.kind == "home":
            base = self._cached(("home", state.menu_index, minute), lambda: self._home(state, now))
        elif state.kind == "guide":
            base = self._cached(("guide", state.menu_index, state.channel, minute), lambda: self._guide(state, now))
        else:
            base = self._cached(
                ("settings", state.menu_index, state.firmware_version, state.model),
                lambda: self._settings(state),
            )
        return base

    # -- live TV ----------------------------------------------------------------------------
    def _frozen_time(self, state: ScreenState, now: float) -> float:
        if state.frozen_at is not None:
            return state.frozen_at
        if self._video_t is None:
            self._video_t = now
        return self._video_t

    def _live(self, state: ScreenState, now: float) -> np.ndarray:
        if now < state.tuning_until:  # decoder still acquiring the new channel: black video, OSD on top
            return self._osd(self._black, state, now, copy=True)
        if state.frozen:
            vt = self._frozen_time(state, now)
        else:
            vt = now
            self._video_t = now
        if state.live_frame is not None:
            img = self._iptv_picture(state)
            img = self._osd(img, state, now, copy=False, logo=True)
            return img
        ch = channel(state.channel)
        bg = self._cached(("livebg", ch.number), lambda: self._live_background(ch))
        img = bg.copy()
        # Scrolling band.
        band = self._cached(("band", ch.number), lambda: self._band(ch))
        bx0, by0, bx1, by1 = self._box(BAND_BOX)
        period = band.shape[1] - (bx1 - bx0)
        off = int(vt * _BAND_SPEED * self._sx) % max(1, period)
        img[by0:by1, bx0:bx1] = band[:, off : off + (bx1 - bx0)]
        # Bouncing ball.
        ax0, ay0, ax1, ay1 = BALL_AREA
        r = _BALL_RADIUS
        tx = (vt * 310.0) % (2 * (ax1 - ax0 - 2 * r))
        ty = (vt * 130.0) % (2 * (ay1 - ay0 - 2 * r))
        x = ax0 + r + (tx if tx < ax1 - ax0 - 2 * r else 2 * (ax1 - ax0 - 2 * r) - tx)
        y = ay0 + r + (ty if ty < ay1 - ay0 - 2 * r else 2 * (ay1 - ay0 - 2 * r) - ty)
        raster.disc(img, self._pt(x, y), max(2, round(r * self._sy)), ch.accent)
        # Clock (part of the picture: it stops when the decoder freezes).
        cx0, cy0, cx1, cy1 = self._box(CLOCK_BOX)
        img[cy0:cy1, cx0:cx1] = _darker(ch.background, 0.3)
        wall = self._localtime(vt + self._wall_offset)
        cs = int((vt % 1.0) * 100)
        clock = f"{wall.tm_hour:02d}:{wall.tm_min:02d}:{wall.tm_sec:02d}.{cs // 4 * 4:02d}"
        self._text(img, clock, CLOCK_BOX[0] + 12, CLOCK_BOX[3] - 18, 1.0, _WHITE, _FONT_PLAIN)
        return self._osd(img, state, now, copy=False, logo=False)

    def _iptv_picture(self, state: ScreenState) -> np.ndarray:
        frame = None
        if not state.frozen:
            try:
                frame = state.live_frame() if state.live_frame is not None else None
            except Exception:  # a failing decoder must not take the HDMI output down
                frame = None
            if frame is not None and frame.ndim == 3 and frame.shape[2] == 3:
                if frame.shape[:2] != (self.height, self.width):
                    import cv2  # only for pictures the lab's IPTV headend sends, never the box's own screens

                    cv2.resize(frame, (self.width, self.height), dst=self._live_buf, interpolation=cv2.INTER_LINEAR)
                    self._last_live = self._live_buf.copy()
                else:
                    self._last_live = np.ascontiguousarray(frame, dtype=np.uint8).copy()
        if self._last_live is None:
            return self._black.copy()
        return self._last_live.copy()

    def _osd(self, img: np.ndarray, state: ScreenState, now: float, *, copy: bool, logo: bool = False) -> np.ndarray:
        """The box's own overlays over live TV / no-signal: logo, banner, digit entry, mute."""
        banner = state.banner_visible(now)
        if not (banner or state.digits or state.muted or logo):
            return img
        if copy:
            img = img.copy()
        ch = channel(state.channel)
        if logo:
            lx0, ly0, lx1, ly1 = self._box(LOGO_BOX)
            img[ly0:ly1, lx0:lx1] = self._cached(("logo", ch.number), lambda: logo_image(ch, lx1 - lx0, ly1 - ly0))
        if banner:
            x0, y0, x1, y1 = self._box(BANNER_BOX)
            img[y0:y1, x0:x1] = self._cached(("banner", ch.number, state.name), lambda: self._banner(ch, state.name))
        if state.digits:
            x0, y0, x1, y1 = self._box(DIGITS_BOX)
            img[y0:y1, x0:x1] = (30, 30, 30)
            self._text(img, state.digits + "-", DIGITS_BOX[0] + 16, DIGITS_BOX[3] - 24, 2.0, _HIGHLIGHT)
        if state.muted:
            self._text(img, "MUTE", 1100, 170, 1.0, (0, 0, 255))
        return img

    def _live_background(self, ch: Channel) -> np.ndarray:
        h, w = self.height, self.width
        top, bottom = ch.background, _darker(ch.background, 0.5)
        ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
        col = np.array(top, np.float32) * (1 - ramp) + np.array(bottom, np.float32) * ramp
        img = np.repeat(col[:, None, :], w, axis=1).astype(np.uint8)
        # Static channel test-card strip: eight blocks in shades of the channel's colours.
        y0, y1 = round(440 * self._sy), round(540 * self._sy)
        for i in range(8):
            c = _lerp(ch.accent, ch.background, i / 7)
            x0, x1 = round(i * w / 8), round((i + 1) * w / 8)
            img[y0:y1, x0:x1] = c
        self._text(img, ch.name.upper(), 60, 525, 1.4, _darker(ch.background, 0.4))
        lx0, ly0, lx1, ly1 = self._box(LOGO_BOX)
        img[ly0:ly1, lx0:lx1] = logo_image(ch, lx1 - lx0, ly1 - ly0)
        return img

    def _band(self, ch: Channel) -> np.ndarray:
        bx0, by0, bx1, by1 = self._box(BAND_BOX)
        period = max(8, round(160 * self._sx))
        w, h = (bx1 - bx0) + period, by1 - by0
        yy, xx = np.mgrid[0:h, 0:w]
        stripes = ((xx + yy) % period) < period // 2
        band = np.empty((h, w, 3), np.uint8)
        band[:] = _darker(ch.background, 0.6)
        band[stripes] = ch.accent
        return band

    def _banner(self, ch: Channel, name: str) -> np.ndarray:
        x0, y0, x1, y1 = self._box(BANNER_BOX)
        img = np.empty((y1 - y0, x1 - x0, 3), np.uint8)
        img[:] = (35, 25, 15)
        img[:, : max(2, round(8 * self._sx))] = ch.accent
        # Drawn in banner-local coordinates (design canvas minus the banner's origin).
        bx, by = BANNER_BOX[0], BANNER_BOX[1]
        self._text(img, f"{ch.number}", 70 - bx, 650 - by, 2.4, _HIGHLIGHT)
        self._text(img, name, 200 - bx, 615 - by, 1.5, _WHITE)
        now_text = f"Now: {ch.programme}" if ch.programme else "Now: -"
        self._text(img, now_text, 200 - bx, 665 - by, 0.9, _GREY)
        return img

    # -- menus and other screens ------------------------------------------------------------
    def _menu_canvas(self, title: str, now: float | None) -> np.ndarray:
        img = np.empty((self.height, self.width, 3), np.uint8)
        img[:] = _MENU_BG
        img[: round(110 * self._sy)] = (90, 50, 30)
        self._text(img, title, 60, 75, 1.6, _WHITE)
        if now is not None:
            wall = self._localtime(now + self._wall_offset)
            self._text(img, f"{wall.tm_hour:02d}:{wall.tm_min:02d}", 1100, 75, 1.3, _WHITE)
        return img

    def _items(self, img: np.ndarray, items: tuple[str, ...], index: int, *, x: int = 120, y: int = 170) -> None:
        index = index % len(items)
        for i, item in enumerate(items):
            top = y + i * 80
            if i == index:
                p0, p1 = self._pt(x - 30, top - 10), self._pt(x + 700, top + 60)
                raster.fill_rect(img, p0, p1, _HIGHLIGHT)
                self._text(img, item, x, top + 38, 1.2, (20, 20, 20))
            else:
                self._text(img, item, x, top + 38, 1.2, _WHITE)

    def _home(self, state: ScreenState, now: float) -> np.ndarray:
        img = self._menu_canvas("Home", now)
        self._items(img, HOME_ITEMS, state.menu_index)
        ch = channel(state.channel)
        x0, y0, x1, y1 = self._box((900, 170, 1220, 350))
        img[y0:y1, x0:x1] = ch.background
        self._text(img, f"{ch.number} {state.name}", 915, 340, 0.9, _WHITE)
        return img

    def _guide(self, state: ScreenState, now: float) -> np.ndarray:
        img = self._menu_canvas("TV Guide", now)
        index = state.menu_index % len(CHANNELS)
        start = max(0, min(index - 3, len(CHANNELS) - 7))
        for i, ch in enumerate(CHANNELS[start : start + 7]):
            top = 140 + i * 78
            hi = start + i == index
            p0, p1 = self._pt(40, top), self._pt(1240, top + 66)
            raster.fill_rect(img, p0, p1, _HIGHLIGHT if hi else (80, 45, 30))
            lx0, ly0 = self._pt(50, top + 6)
            lw, lh = round(90 * self._sx), round(54 * self._sy)
            img[ly0 : ly0 + lh, lx0 : lx0 + lw] = logo_image(ch, lw, lh)
            colour = (20, 20, 20) if hi else _WHITE
            marker = " *" if ch.number == state.channel else ""
            self._text(img, f"{ch.number}  {ch.name}{marker}", 160, top + 44, 1.0, colour)
            self._text(img, ch.programme, 620, top + 44, 1.0, colour)
        return img

    def _settings(self, state: ScreenState) -> np.ndarray:
        img = self._menu_canvas("Settings", None)
        self._items(img, SETTINGS_ITEMS, state.menu_index)
        self._text(img, f"Model: {state.model or '-'}", 860, 620, 0.8, _GREY)
        self._text(img, f"Firmware: {state.firmware_version or '-'}", 860, 660, 0.8, _GREY)
        return img

    def _boot(self, state: ScreenState) -> np.ndarray:
        img = np.zeros((self.height, self.width, 3), np.uint8)
        img[:] = (40, 20, 10)
        self._text(img, "stblab", 470, 330, 3.0, _WHITE)
        self._text(img, state.model or "set-top box", 480, 400, 1.0, _GREY)
        self._text(img, f"firmware {state.firmware_version or '?'}", 480, 440, 0.9, _GREY)
        p0, p1 = self._pt(390, 520), self._pt(890, 545)
        raster.rect_outline(img, p0, p1, _GREY, self._th(2))
        frac = min(1.0, max(0.0, state.boot_progress))
        if frac > 0:
            q1 = self._pt(390 + 500 * frac, 545)
            raster.fill_rect(img, p0, q1, _HIGHLIGHT)
        return img

    def _no_channel(self, state: ScreenState) -> np.ndarray:
        img = np.empty((self.height, self.width, 3), np.uint8)
        img[:] = (45, 45, 45)
        p0, p1 = self._pt(290, 250), self._pt(990, 470)
        raster.fill_rect(img, p0, p1, (90, 60, 40))
        raster.rect_outline(img, p0, p1, _WHITE, self._th(2))
        self._text(img, "No signal on this channel", 330, 330, 1.3, _WHITE)
        self._text(img, f"Channel {state.channel} {state.name}", 330, 390, 1.0, _GREY)
        self._text(img, "Please check the network connection", 330, 440, 0.8, _GREY)
        return img


__all__ = ["BANNER_BOX", "CLOCK_BOX", "LOGO_BOX", "Renderer", "logo_image"]
