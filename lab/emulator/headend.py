"""The emulated IPTV headend: real MPEG-TS channels played out over UDP multicast.

Each channel of a channel map is encoded once with PyAV (H.264, low resolution, constant bitrate,
a PCR every 20 ms, one IDR a second so zaps are quick), cached as a ``.ts`` file, and played out
in a loop to its multicast group: 7 TS packets per datagram, paced by the stream's own bitrate.
On every pass of the loop the PCR, PTS and DTS are shifted by the loop length and continuity
counters carry on, so a receiver (or the TS checker) sees one endless, valid stream.

Channel map YAML::

    channels:
      - {number: 1, name: Lab One, group: 239.1.1.1, port: 5000}
      - {number: 2, name: Lab Two, group: 239.1.1.2, port: 5000}

Example::

    cmap = ChannelMap.default(count=4)
    with Headend(cmap, interface_ip="10.231.1.1", cache_dir=tmp) as head:   # lab side of the rig
        ...   # the box joins 239.1.1.1:5000 and gets channel 1
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import ipaddress
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lab.network import ts

log = logging.getLogger("stblab.headend")

ENCODER_VERSION = 5  # 4: pictures drawn with lab.emulator.raster (no OpenCV); 5: the disc crosses mid-picture


class ChannelEntry(BaseModel):
    """One channel: number, name, multicast group and UDP port."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: int = Field(..., ge=1, le=9999)
    name: str
    group: str
    port: int = Field(5000, gt=0, lt=65536)

    @field_validator("group")
    @classmethod
    def _multicast(cls, v: str) -> str:
        if not ipaddress.ip_address(v).is_multicast:
            raise ValueError(f"{v} is not a multicast address")
        return v


class ChannelMap(BaseModel):
    """The line-up the headend plays and the box tunes: channel number -> group:port."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: list[ChannelEntry]

    def get(self, number: int) -> ChannelEntry | None:
        """The entry for a channel number, or None when the map has no such channel."""
        for c in self.channels:
            if c.number == number:
                return c
        return None

    @classmethod
    def default(cls, count: int = 10, base: str = "239.1.1.0", port: int = 5000) -> ChannelMap:
        """Channels 1..count on ``base + n`` (239.1.1.1, 239.1.1.2, ...), named as the box names them."""
        names = _lineup_names()
        start = ipaddress.ip_address(base)
        return cls(
            channels=[
                ChannelEntry(number=n, name=names.get(n, f"Channel {n}"), group=str(start + n), port=port)
                for n in range(1, count + 1)
            ]
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ChannelMap:
        """Read a channel map YAML; errors name the file, key and problem."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
            return cls.model_validate(data)
        except OSError as exc:
            raise ValueError(f"{path}: cannot read channel map: {exc.strerror or exc}") from exc
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            raise ValueError(f"{path}: key '{key}': {err['msg']}") from exc


def _lineup_names() -> dict[int, str]:
    try:
        from lab.emulator.screen import CHANNELS

        return {c.number: c.name for c in CHANNELS}
    except ImportError:  # pragma: no cover - screen.py is another engineer's file
        return {}


def _colours(number: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    try:
        from lab.emulator.screen import channel

        ch = channel(number)
        return ch.background, ch.accent
    except ImportError:  # pragma: no cover
        rng = np.random.default_rng(number)
        return tuple(int(x) for x in rng.integers(0, 200, 3)), (255, 255, 255)  # type: ignore[return-value]


@dataclass(frozen=True)
class EncodeSettings:
    """How channels are encoded (part of the cache key)."""

    width: int = 480
    height: int = 270
    fps: int = 25
    seconds: float = 8.0
    bitrate: int = 1_000_000  # video bits/s; the mux adds ~15 % for CBR padding and tables
    gop: int = 25

    @property
    def muxrate(self) -> int:
        return int(self.bitrate * 1.25)


def default_cache_dir() -> Path:
    """``$STBLAB_CACHE/headend`` or ``~/.cache/stblab/headend``."""
    root = os.environ.get("STBLAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "stblab")
    return Path(root) / "headend"


def _texture(xx: np.ndarray, yy: np.ndarray, i: int, s: EncodeSettings) -> np.ndarray:
    """A smooth texture (no block edges of its own, so lost packets show as blocks a check can see)
    that drifts like a panning camera, so the whole picture moves, not only the objects."""
    ph = i * 0.35
    grid = (
        20 + 18 * np.sin(xx / 9.0 + yy / 13.0 + ph) + 14 * np.sin(yy / 7.0 - xx / 17.0 - ph * 0.6) + xx * 30 // s.width
    )
    grid = np.clip(grid, 0, 255).astype(np.uint8)
    return np.repeat(grid[:, :, None], 3, axis=2)


def _picture(number: int, name: str, i: int, s: EncodeSettings, grid: np.ndarray) -> np.ndarray:
    from lab.emulator import raster  # numpy-only drawing: the channels look the same on every host

    bg, accent = _colours(number)
    img = np.empty((s.height, s.width, 3), np.uint8)
    img[:] = bg
    img = np.minimum(img.astype(np.uint16) + grid, 255).astype(np.uint8)
    t = i / s.fps
    x = int((s.width - 60) * (0.5 + 0.5 * np.sin(t * 1.3)))
    y = int((s.height - 60) * (0.5 + 0.5 * np.cos(t * 0.9)))
    raster.fill_rect(img, (x, y), (x + 60, y + 60), accent)
    # A white disc crossing the middle of the picture at a constant speed (about 5 pixels a frame):
    # every frame differs from the one before where a motion check looks (scenarios' live_motion
    # band), wherever a zap lands in the loop. The texture's drift and the square alone are below a
    # motion check's noise threshold for seconds at a time (the square slows at its turns and leaves
    # the band): a zap landing there looked like a frozen picture.
    raster.disc(img, (int(s.width * (t % 4) / 4), s.height // 2), 18, (255, 255, 255))
    raster.text(img, f"{number}", (14, 56), 1.8, accent, "simplex")
    raster.text(img, name, (14, 90), 0.8, (255, 255, 255), "simplex")
    raster.text(img, f"{t:05.2f}", (s.width - 130, 34), 0.8, (255, 255, 255), "simplex")
    return img


def encode_channel(number: int, name: str, path: Path, settings: EncodeSettings = EncodeSettings()) -> Path:
    """Encode one channel's loop to ``path`` (H.264 in CBR MPEG-TS, PCR every 20 ms)."""
    import av

    s = settings
    yy, xx = np.mgrid[0 : s.height, 0 : s.width].astype(np.float32)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    out = av.open(
        str(tmp),
        "w",
        format="mpegts",
        options={"muxrate": str(s.muxrate), "pcr_period": "20", "mpegts_flags": "resend_headers"},
    )
    try:
        st = out.add_stream("libx264", rate=s.fps)
        st.width, st.height, st.pix_fmt = s.width, s.height, "yuv420p"
        st.bit_rate = s.bitrate
        st.codec_context.time_base = Fraction(1, s.fps)
        kbit = s.bitrate // 1000
        st.codec_context.options = {
            "preset": "veryfast",
            "tune": "zerolatency",
            "x264-params": (
                f"nal-hrd=cbr:bitrate={kbit}:vbv-maxrate={kbit}:vbv-bufsize={kbit // 2}:"
                f"keyint={s.gop}:min-keyint={s.gop}:scenecut=0:bframes=0:repeat-headers=1"
            ),
        }
        for i in range(int(s.seconds * s.fps)):
            frame = av.VideoFrame.from_ndarray(_picture(number, name, i, s, _texture(xx, yy, i, s)), format="bgr24")
            frame.pts = i
            for packet in st.encode(frame):
                out.mux(packet)
        for packet in st.encode(None):
            out.mux(packet)
    finally:
        out.close()
    os.replace(tmp, path)
    return path


def channel_file(
    entry: ChannelEntry, cache_dir: Path | None = None, settings: EncodeSettings = EncodeSettings()
) -> Path:
    """The cached ``.ts`` of a channel, encoded on first use (safe with concurrent processes)."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha1(repr((ENCODER_VERSION, entry.number, entry.name, settings)).encode()).hexdigest()[:12]
    path = cache / f"ch{entry.number:03d}-{key}.ts"
    if not path.exists():
        log.info("encoding channel %d (%s) to %s", entry.number, entry.name, path)
        encode_channel(entry.number, entry.name, path, settings)
    return path


@dataclass
class _Loop:
    """A channel file prepared for looped playout."""

    data: bytes
    datagrams: int
    rate: float  # bits per second measured from the PCRs
    shift_27m: int  # PCR shift per pass of the loop
    # per datagram: list of (offset, kind) with kind "pcr" | "pts2" | "pts3" | "dts1"
    fields: list[list[tuple[int, str]]]
    cc_offsets: list[list[tuple[int, int]]]  # per datagram: (byte offset, pid) of packets with payload


def prepare_loop(path: Path) -> _Loop:
    """Index a TS file for looped playout: rate from the PCRs, timestamp fields, CC positions."""
    data = Path(path).read_bytes()
    n = len(data) // ts.PACKET
    n -= n % ts.PER_DATAGRAM
    data = data[: n * ts.PACKET]
    first = last = None
    fields: list[list[tuple[int, str]]] = []
    ccs: list[list[tuple[int, int]]] = []
    for d in range(n // ts.PER_DATAGRAM):
        f: list[tuple[int, str]] = []
        c: list[tuple[int, int]] = []
        for k in range(ts.PER_DATAGRAM):
            off = (d * ts.PER_DATAGRAM + k) * ts.PACKET
            pkt = data[off : off + ts.PACKET]
            info = ts.TsPacket.parse(pkt)
            if info.pid == ts.NULL_PID:
                continue
            if info.has_payload:
                c.append((off, info.pid))
            if info.pcr is not None:
                f.append((off + 6, "pcr"))
                if first is None:
                    first = (off, info.pcr)
                last = (off, info.pcr)
            if info.pusi and info.has_payload:
                offs = ts.pes_timestamp_offsets(pkt, info.payload_offset)
                kinds = ["pts2"] if len(offs) == 1 else ["pts3", "dts1"]
                f += [(off + o, kind) for o, kind in zip(offs, kinds, strict=False)]
        fields.append(f)
        ccs.append(c)
    if first is None or last is None or last[1] <= first[1]:
        raise ValueError(f"{path}: no usable PCRs: not a constant-bitrate transport stream")
    rate = (last[0] - first[0]) * 8 * ts.PCR_HZ / (last[1] - first[1])
    seconds = len(data) * 8 / rate
    shift = round(seconds * ts.PTS_HZ) * 300
    return _Loop(data, n // ts.PER_DATAGRAM, rate, shift, fields, ccs)


class _Channel:
    def __init__(self, entry: ChannelEntry, loop: _Loop) -> None:
        self.entry = entry
        self.loop = loop
        self.index = 0  # datagrams sent since start
        self.cc: dict[int, int] = {}
        self.sent = 0

    def datagram(self) -> bytes:
        lp = self.loop
        d = self.index % lp.datagrams
        passes = self.index // lp.datagrams
        buf = bytearray(lp.data[d * ts.DATAGRAM : (d + 1) * ts.DATAGRAM])
        base = d * ts.DATAGRAM
        for off, pid in lp.cc_offsets[d]:
            cc = self.cc.get(pid, -1) + 1 & 0x0F
            self.cc[pid] = cc
            buf[off - base + 3] = (buf[off - base + 3] & 0xF0) | cc
        if passes:
            shift = passes * lp.shift_27m
            for off, kind in lp.fields[d]:
                o = off - base
                if kind == "pcr":
                    buf[o : o + 6] = ts.encode_pcr((ts.decode_pcr(buf, o) + shift) % (2**33 * 300))
                else:
                    prefix = {"pts2": 2, "pts3": 3, "dts1": 1}[kind]
                    buf[o : o + 5] = ts.encode_timestamp(prefix, ts.decode_timestamp(buf, o) + shift // 300)
        self.index += 1
        return bytes(buf)


class Headend:
    """Plays the channels of a channel map to their multicast groups from ``interface_ip``.

    ``channels`` limits playout to some channel numbers (the others are "absent": a box tuning to
    them gets no stream). ``ttl`` 1 keeps the traffic on the rig's link. Start/stop or use as a
    context manager; channels are encoded (or taken from the cache) before playout starts.

    ``on_demand_interface`` (the lab-side interface name) makes the headend behave as the link's
    multicast router: a channel is sent only while a box has joined its group (IGMP reports seen
    on that interface, general queries sent as the querier). Every channel's clock keeps running
    meanwhile, so a join lands mid-stream as on a live network. Without it every channel is sent
    all the time (loopback-only rigs: the kernel sends no IGMP on ``lo``).
    """

    def __init__(
        self,
        channel_map: ChannelMap,
        *,
        interface_ip: str = "127.0.0.1",
        cache_dir: str | os.PathLike[str] | None = None,
        channels: list[int] | None = None,
        settings: EncodeSettings = EncodeSettings(),
        ttl: int = 1,
        on_demand_interface: str | None = None,
    ) -> None:
        self.channel_map = channel_map
        self.on_demand_interface = on_demand_interface
        self.igmp: Any = None
        self.interface_ip = interface_ip
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.numbers = channels if channels is not None else [c.number for c in channel_map.channels]
        self.settings = settings
        self.ttl = ttl
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._channels: list[_Channel] = []
        self._paused: set[int] = set()

    def files(self) -> dict[int, Path]:
        """Channel number -> cached TS file (encodes what is missing)."""
        out: dict[int, Path] = {}
        for n in self.numbers:
            entry = self.channel_map.get(n)
            if entry is None:
                raise ValueError(f"channel {n} is not in the channel map")
            out[n] = channel_file(entry, self.cache_dir, self.settings)
        return out

    def start(self) -> Headend:
        files = self.files()
        self._channels = [_Channel(self.channel_map.get(n), prepare_loop(p)) for n, p in files.items()]  # type: ignore[arg-type]
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, self.ttl)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.interface_ip))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        sock.bind((self.interface_ip, 0))
        self._sock = sock
        if self.on_demand_interface:
            from lab.network.igmp import IgmpListener

            self.igmp = IgmpListener(self.on_demand_interface, self.interface_ip).start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="headend", daemon=True)
        self._thread.start()
        return self

    def pause(self, number: int) -> None:
        """Stop sending one channel (the stream goes absent) until :meth:`resume`."""
        self._paused.add(number)

    def resume(self, number: int) -> None:
        self._paused.discard(number)

    def stats(self) -> dict[int, int]:
        """Datagrams sent per channel number."""
        return {c.entry.number: c.sent for c in self._channels}

    def bitrates(self) -> dict[int, float]:
        """Channel number -> playout bitrate in bit/s (from the stream's PCRs)."""
        return {c.entry.number: c.loop.rate for c in self._channels}

    def _run(self) -> None:
        assert self._sock is not None
        t0 = time.monotonic() + 0.05
        heap: list[tuple[float, int]] = []
        for i in range(len(self._channels)):
            heapq.heappush(heap, (t0 + i * 0.0013, i))
        intervals = [ts.DATAGRAM * 8 / ch.loop.rate for ch in self._channels]
        while not self._stop.is_set():
            due, i = heap[0]
            now = time.monotonic()
            if due > now:
                self._stop.wait(min(due - now, 0.05))
                continue
            heapq.heapreplace(heap, (due + intervals[i], i))
            ch = self._channels[i]
            payload = ch.datagram()
            if now - due > 1.0:  # fell far behind (machine stalled): skip ahead, keep the clock
                continue
            if ch.entry.number in self._paused:
                continue
            if self.igmp is not None and not self.igmp.has_members(ch.entry.group):
                continue  # nobody joined: the router does not forward this group
            try:
                self._sock.sendto(payload, (ch.entry.group, ch.entry.port))
                ch.sent += 1
            except OSError as exc:  # link gone (namespace torn down): keep the clock, log once a second
                if ch.sent % 25 == 0:
                    log.debug("headend send to %s failed: %s", ch.entry.group, exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        if self.igmp is not None:
            self.igmp.stop()
            self.igmp = None
        if self._sock:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._thread = None
        self._sock = None

    def __enter__(self) -> Headend:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


__all__ = ["ChannelEntry", "ChannelMap", "EncodeSettings", "Headend", "channel_file", "default_cache_dir"]
