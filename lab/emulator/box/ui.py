"""What the emulated box shows and how it reacts to keys: screen, zap, standby."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from lab.emulator.box.base import BoxBase
from lab.emulator.screen import BANNER_SECONDS, channel, channel_numbers

log = logging.getLogger("stblab.emulator.box")


def _norm_key(name: str) -> str:
    name = name.strip().upper()
    return name[4:] if name.startswith("KEY_") else name


class UiMixin(BoxBase):
    """What the emulated box shows and how it reacts to keys: screen, zap, standby.

    A mixin of :class:`~lab.emulator.box.Box`; the state lives on the box.
    """

    # -- screen and keys ------------------------------------------------------------------------

    def screen_state(self) -> Any:
        """The current :class:`ScreenState` (what the HDMI output draws)."""
        return self._screen

    def _set_screen(self, **changes: Any) -> None:
        if self._screen is None:
            return
        with self._lock:
            if "firmware_version" not in changes and self.phase != "off":
                changes["firmware_version"] = self.fw_info()["version"]
            self._screen = self._screen.replace(**changes)

    def _tune_screen(self, number: int, *, banner: bool) -> None:
        known = number in channel_numbers()
        kind = "live" if known else "no_channel"
        name = channel(number).name if known else f"Channel {number}"
        frozen = self.defects.frozen
        changes: dict[str, Any] = {"kind": kind, "channel": number, "channel_name": name, "digits": ""}
        changes["banner_until"] = time.monotonic() + BANNER_SECONDS if banner else 0.0
        changes["frozen"] = frozen
        if frozen and self._screen is not None and not self._screen.frozen:
            changes["frozen_at"] = time.monotonic()
        changes["black"] = self.defects.black
        rx = self._iptv_receiver() if known else None
        if rx is not None:
            changes["live_frame"] = rx.latest_frame
            rx.tune(number)
        self._set_screen(**changes)

    def _iptv_receiver(self) -> Any:
        """The IPTV receiver (lab.emulator.iptv), made on first use; None when not configured."""
        cfg = self.settings.iptv
        if cfg is None:
            return None
        if self.iptv is None:
            from lab.emulator.headend import ChannelMap
            from lab.emulator.iptv import IptvReceiver

            cmap = ChannelMap.load(cfg.channel_map) if cfg.channel_map else ChannelMap.default()
            ns = cfg.namespace
            if ns == "rig":
                ns = self.rig.network.namespace if self.rig.network is not None else None
            self.iptv = IptvReceiver(
                cmap,
                namespace=ns,
                interface_ip=cfg.interface_ip,
                on_state=self._iptv_state,
                no_signal_after=cfg.no_signal_after,
            )
        return self.iptv

    def _iptv_state(self, state: str) -> None:
        """Receiver state -> screen: no datagrams = the box's "no signal on this channel" screen."""
        screen = self._screen
        if screen is None or self.phase != "running" or self.standby:
            return
        if state == "no_signal" and screen.kind == "live":
            self._set_screen(kind="no_channel")
        elif state == "playing" and screen.kind == "no_channel" and screen.channel in channel_numbers():
            self._set_screen(kind="live")

    def _iptv_stop(self) -> None:
        if self.iptv is not None:
            with contextlib.suppress(Exception):
                self.iptv.stop()

    def in_standby(self) -> bool:
        return self.standby

    def recent_keys(self) -> list[str]:
        return list(self._keys)

    def tune(self, number: int) -> tuple[bool, str]:
        """Change channel (``tune N`` and IR digits). Returns (ok, message)."""
        with self._lock:
            if self.phase != "running":
                return False, "tune: box not running"
            if self.standby:
                return False, "tune: box in standby"
            self.channel = number
            self.state.env["last_channel"] = str(number)
            self.zaps += 1
        self.defects.on_zap()
        gen, delay = self._gen, self.hogs.ui_delay()
        if delay:  # the UI thread shares the CPU with busy third-party apps: the zap draws late
            time.sleep(delay)
        if self.phase != "running" or gen != self._gen:
            return False, "tune: box crashed"
        self._tune_screen(number, banner=True)
        if number not in channel_numbers():
            self.kmsg(f"dvb_core: no signal on channel {number}", console=False)
            return False, f"tuned={number} signal=none"
        return True, f"tuned={number} name={self._screen.channel_name if self._screen else number}"

    def press_key(self, key: str) -> None:
        """A decoded IR key (from the iTach or lircd receiver): drives the UI state machine."""
        name = _norm_key(key)
        with self._lock:
            if self.phase != "running":
                return
            self._keys.append("KEY_" + name)
        self.kmsg(f"stb_ir: key KEY_{name}", console=False)
        if self.defects.on_key("KEY_" + name):
            return
        if name == "POWER":
            self._toggle_standby()
            return
        if self.standby:
            return
        kind = self._screen.kind if self._screen is not None else "live"
        numbers = channel_numbers()
        if name.isdigit() and len(name) == 1:
            self._digit(name)
        elif name in ("CHANNELUP", "CHANNELDOWN"):
            cur = self.channel if self.channel in numbers else numbers[0]
            i = numbers.index(cur) + (1 if name == "CHANNELUP" else -1)
            self.tune(numbers[i % len(numbers)])
        elif name in ("MENU", "HOME"):
            self._set_screen(kind="home", menu_index=0, digits="")
        elif name in ("EPG", "GUIDE"):
            self._set_screen(
                kind="guide", menu_index=max(0, numbers.index(self.channel)) if self.channel in numbers else 0
            )
        elif name in ("SETUP", "SETTINGS"):
            self._set_screen(kind="settings", menu_index=0)
        elif name in ("BACK", "EXIT"):
            self._tune_screen(self.channel, banner=False)
        elif name == "INFO":
            self._tune_screen(self.channel, banner=True)
        elif name == "MUTE" and self._screen is not None:
            self._set_screen(muted=not self._screen.muted)
        elif name in ("UP", "DOWN") and kind in ("home", "settings", "guide"):
            self._move(1 if name == "DOWN" else -1, kind)
        elif name == "OK":
            self._ok(kind)

    def _move(self, delta: int, kind: str) -> None:
        from lab.emulator import screen as scr

        size = {"home": len(scr.HOME_ITEMS), "settings": len(scr.SETTINGS_ITEMS)}.get(kind, len(channel_numbers()))
        self._set_screen(menu_index=(self._screen.menu_index + delta) % size)

    def _ok(self, kind: str) -> None:
        if self._screen is None:
            return
        if self._screen.digits:
            self._commit_digits()
        elif kind == "home":
            item = ("live", "guide", "home", "home", "settings")[self._screen.menu_index % 5]
            if item == "live":
                self._tune_screen(self.channel, banner=True)
            elif item != "home":
                self._set_screen(kind=item, menu_index=0)
        elif kind == "guide":
            self.tune(channel_numbers()[self._screen.menu_index % len(channel_numbers())])

    def _digit(self, d: str) -> None:
        digits = ((self._screen.digits if self._screen else "") + d)[-3:]
        self._set_screen(digits=digits)
        if self._digit_timer:
            self._digit_timer.cancel()
        if len(digits) >= 2:
            self._commit_digits()
            return
        self._digit_timer = threading.Timer(1.0, self._commit_digits)
        self._digit_timer.daemon = True
        self._digit_timer.start()

    def _commit_digits(self) -> None:
        if self._digit_timer:
            self._digit_timer.cancel()
        digits = self._screen.digits if self._screen else ""
        if digits and self.phase == "running":
            self.tune(int(digits))

    def _toggle_standby(self) -> None:
        with self._lock:
            self.standby = not self.standby
            entering = self.standby
        if entering:
            self.kmsg("stb_hdmi: entering standby, output muted", console=False)
            self._iptv_stop()
            self._set_screen(kind="standby", digits="")
        else:
            self.kmsg("stb_hdmi: resume from standby", console=False)
            self.defects.on_resume()
            self._tune_screen(self.channel, banner=True)
        self._emit("standby" if entering else "resume")
