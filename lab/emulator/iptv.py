"""The emulated box's IPTV receiver: IGMP join, TS demux, H.264 decode, pictures to the HDMI output.

``tune(n)`` leaves the current group and joins channel n's group with a real IGMP join
(``IP_ADD_MEMBERSHIP`` on a socket that lives in the box's network namespace); a worker thread
reads the datagrams, demultiplexes the video PID from PAT/PMT, feeds the elementary stream to
PyAV's parser and decoder, and hands each decoded picture (BGR ``uint8``) to ``on_frame``. Packets
lost on the network are simply missing from the elementary stream, so the decoder shows what a
real box shows: blocks and smears until the next IDR, or a frozen picture. No datagram for
``no_signal_after`` seconds makes the state ``no_signal`` (the box shows its "no signal on this
channel" screen); data coming back makes it ``tuning`` then ``playing`` again.

What the box core wires (lab/emulator/box.py)::

    rx = IptvReceiver(ChannelMap.default(), namespace=rig.network.namespace,   # None: loopback
                      on_state=lambda s: box.iptv_state_changed(s))
    state = state.replace(kind="live", channel=n, live_frame=rx.latest_frame)
    rx.tune(n)          # on every zap;  rx.stop() on standby / power off
    # on_state("no_signal") -> ScreenState kind "no_channel"; on_state("playing") -> kind "live"

Example::

    with IptvReceiver(cmap, namespace="stblab-stb-a") as rx:
        rx.tune(1)
        assert rx.wait_state("playing", timeout=3)
        img = rx.latest_frame()
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lab.emulator.headend import ChannelMap
from lab.network import ts
from lab.network.netns import in_netns

log = logging.getLogger("stblab.iptv")

FrameCallback = Callable[[np.ndarray], None]
StateCallback = Callable[[str], None]
STATES = ("idle", "tuning", "playing", "no_signal")


class _Demux:
    """PAT -> PMT -> video PID; returns elementary-stream bytes of the video PID, counts CC gaps."""

    def __init__(self) -> None:
        self.pmt_pid: int | None = None
        self.video_pid: int | None = None
        self.codec: str | None = None
        self.cc: dict[int, int] = {}
        self.cc_errors = 0
        self._pat = ts.SectionAssembler()
        self._pmt = ts.SectionAssembler()

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for off in range(0, len(data) - ts.PACKET + 1, ts.PACKET):
            pkt = data[off : off + ts.PACKET]
            if pkt[0] != ts.SYNC:
                continue
            info = ts.TsPacket.parse(pkt)
            pid = info.pid
            if info.has_payload and pid != ts.NULL_PID:
                self._count_cc(pid, info.cc)
            if pid == 0:
                self._pat_section(pkt, info)
            elif pid == self.pmt_pid:
                self._pmt_section(pkt, info)
            elif pid == self.video_pid and info.has_payload:
                p = info.payload_offset
                if info.pusi and pkt[p : p + 3] == b"\x00\x00\x01" and p + 9 <= ts.PACKET:
                    p += 9 + pkt[p + 8]
                out += pkt[p:]
        return bytes(out)

    def _count_cc(self, pid: int, cc: int) -> None:
        """A continuity counter that skips (a repeat is allowed) is a lost packet on that PID."""
        last = self.cc.get(pid)
        if last is not None and cc != (last + 1) & 0x0F and cc != last:
            self.cc_errors += 1
        self.cc[pid] = cc

    def _pat_section(self, pkt: bytes, info: ts.TsPacket) -> None:
        for sec in self._pat.push(pkt, info):
            if sec[0] == 0 and ts.crc32_mpeg(sec) == 0:
                progs = ts.parse_pat(sec)
                if progs:
                    self.pmt_pid = next(iter(progs.values()))

    def _pmt_section(self, pkt: bytes, info: ts.TsPacket) -> None:
        for sec in self._pmt.push(pkt, info):
            if sec[0] == 2 and ts.crc32_mpeg(sec) == 0:
                _, streams = ts.parse_pmt(sec)
                for es, stype in streams.items():
                    if stype in ts.VIDEO_STREAM_TYPES:
                        self.video_pid, self.codec = es, ts.VIDEO_STREAM_TYPES[stype]
                        break


class IptvReceiver:
    """The box's IPTV front end. Thread-safe ``tune``/``stop``; pictures go to ``on_frame``.

    channel_map:     the line-up (channel number -> multicast group:port)
    namespace:       the box's network namespace (None = this one, e.g. loopback-only rigs)
    interface_ip:    address of the interface to join on ("0.0.0.0" = by route)
    on_frame:        called with every decoded picture (BGR uint8, stream resolution)
    on_state:        called with "idle" | "tuning" | "playing" | "no_signal" when the state changes
    no_signal_after: seconds without a datagram before the state is "no_signal"
    max_lag:         seconds the picture may run behind the stream before it skips ahead

    Pictures are presented at the stream's frame rate, as a box's decoder clock does: the first
    one of a channel at once, each next one a frame interval after the previous (or when it is
    decoded, if later). Datagrams that reach the box in a burst (the network, or the host running
    the emulator, held them up) then play out smoothly, a little late, instead of flashing past
    between two HDMI frames and leaving the picture frozen until the next burst.
    """

    def __init__(
        self,
        channel_map: ChannelMap,
        *,
        namespace: str | None = None,
        interface_ip: str = "0.0.0.0",
        on_frame: FrameCallback | None = None,
        on_state: StateCallback | None = None,
        no_signal_after: float = 1.5,
        max_lag: float = 1.0,
    ) -> None:
        self.channel_map = channel_map
        self.max_lag = max_lag
        self.namespace = namespace
        self.interface_ip = interface_ip
        self.on_frame = on_frame
        self.on_state = on_state
        self.no_signal_after = no_signal_after
        self.state = "idle"
        self.channel: int | None = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._wanted: int | None = None
        self._generation = 0
        self._latest: np.ndarray | None = None
        self._queue: collections.deque[tuple[float, np.ndarray]] = collections.deque()  # (due, picture)
        self._last_due = 0.0
        self._running = False
        self._thread: threading.Thread | None = None
        self._mreq = b""
        self.stats: dict[str, Any] = {
            "datagrams": 0,
            "bytes": 0,
            "frames": 0,
            "cc_errors": 0,
            "decode_errors": 0,
            "zaps": 0,
            "zap_times": [],
        }

    # -- public ---------------------------------------------------------------------------------
    def start(self) -> IptvReceiver:
        if not self._running:
            self._running = True
            self._thread = threading.Thread(target=self._run, name="iptv-rx", daemon=True)
            self._thread.start()
        return self

    def tune(self, number: int) -> None:
        """Zap to channel ``number`` (leave the old group, join the new one). Starts the receiver."""
        self.start()
        with self._cond:
            self._wanted = number
            self._generation += 1
            self.stats["zaps"] += 1
            self._cond.notify_all()
        self._set_state("tuning")

    def stop(self) -> None:
        """Leave the channel (IGMP leave) and go idle; the worker keeps running for the next tune."""
        with self._cond:
            self._wanted = None
            self._generation += 1
            self._cond.notify_all()
        self._set_state("idle")

    def close(self) -> None:
        """Stop and end the worker thread."""
        self.stop()
        self._running = False
        if self._thread:
            self._thread.join(timeout=2)
            self._thread = None

    def latest_frame(self) -> np.ndarray | None:
        """The picture of the tuned channel due now (None before the first one); a ScreenState
        ``live_frame`` provider."""
        now = time.monotonic()
        with self._lock:
            while self._queue and self._queue[0][0] <= now:
                self._latest = self._queue.popleft()[1]
            return self._latest

    def wait_state(self, state: str, timeout: float) -> bool:
        """Block until the receiver is in ``state`` (True) or ``timeout`` passes (False)."""
        end = time.monotonic() + timeout
        with self._cond:
            while self.state != state:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def __enter__(self) -> IptvReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- worker ---------------------------------------------------------------------------------
    def _set_state(self, state: str, generation: int | None = None) -> None:
        """Change state; with ``generation``, only if no tune/stop happened since (no stale news)."""
        with self._cond:
            if self.state == state or (generation is not None and generation != self._generation):
                return
            self.state = state
            self._cond.notify_all()
        log.debug("iptv channel %s: %s", self.channel, state)
        if self.on_state:
            try:
                self.on_state(state)
            except Exception:  # the box's callback must not kill the receiver
                log.exception("on_state callback failed")

    def _open(self, number: int) -> socket.socket | None:
        entry = self.channel_map.get(number)
        if entry is None:
            return None
        with in_netns(self.namespace):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "IP_MULTICAST_ALL"):
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_ALL, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        sock.bind((entry.group, entry.port))
        mreq = struct.pack("4s4s", socket.inet_aton(entry.group), socket.inet_aton(self.interface_ip))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)  # the IGMP join
        sock.settimeout(0.1)
        self._mreq = mreq
        return sock

    def _close(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, self._mreq)  # the IGMP leave
        sock.close()

    def _run(self) -> None:
        tuned = _Tuned()
        generation = -1
        while self._running:
            with self._cond:
                changed = generation != self._generation
                if changed:
                    generation = self._generation
                    wanted = self._wanted
            if changed:
                tuned = self._retune(tuned, wanted)
            if tuned.sock is None:
                self._wait_without_socket(tuned, generation)
                continue
            es = self._receive(tuned, tuned.sock, generation)
            if es:
                self._decode(tuned, es, generation)
        self._close(tuned.sock)
        self._set_state("idle")

    def _retune(self, old: _Tuned, wanted: int | None) -> _Tuned:
        """Leave the old channel, join ``wanted`` (None: stay idle); a fresh demuxer and decoder."""
        self._close(old.sock)
        with self._lock:
            self._queue.clear()
            self._latest = None if wanted != self.channel else self._latest
        self.channel = wanted
        if wanted is None:
            self._set_state("idle")
            return _Tuned(joined_at=old.joined_at, last_data=old.last_data)
        new = _Tuned()
        try:
            new.sock = self._open(wanted)
        except Exception as exc:  # no namespace (yet), no route: no signal, keep running
            log.warning("iptv: cannot join channel %s: %s", wanted, exc)
            new.sock = None
        new.joined_at = new.last_data = time.monotonic()
        self._set_state("tuning")
        return new

    def _wait_without_socket(self, tuned: _Tuned, generation: int) -> None:
        """No socket (idle, or the join failed): no signal once it lasts, and wait for the next tune."""
        if self.channel is not None and time.monotonic() - tuned.joined_at > self.no_signal_after:
            self._set_state("no_signal", generation)
        with self._cond:
            if generation == self._generation and self._running:
                self._cond.wait(0.1)

    def _receive(self, tuned: _Tuned, sock: socket.socket, generation: int) -> bytes:
        """One datagram, demultiplexed: the video elementary-stream bytes in it (b"" when none came)."""
        try:
            data = sock.recv(65536)
        except TimeoutError:
            if time.monotonic() - tuned.last_data > self.no_signal_after:
                self._set_state("no_signal", generation)
                tuned.seen_key = False
            return b""
        except OSError:
            return b""
        tuned.last_data = time.monotonic()
        if self.state == "no_signal":
            self._set_state("tuning", generation)
        self.stats["datagrams"] += 1
        self.stats["bytes"] += len(data)
        before = tuned.demux.cc_errors
        es = tuned.demux.feed(data)
        self.stats["cc_errors"] += tuned.demux.cc_errors - before
        return es

    def _decode(self, tuned: _Tuned, es: bytes, generation: int) -> None:
        """Parse and decode elementary-stream bytes; show each picture from the first key frame on."""
        import av

        if tuned.codec is None:
            if tuned.demux.codec is None:
                return
            tuned.codec = av.CodecContext.create(tuned.demux.codec, "r")
            tuned.codec.thread_type = "NONE"
        try:
            packets = tuned.codec.parse(es)
        except av.error.FFmpegError:
            self.stats["decode_errors"] += tuned.seen_key
            return
        for packet in packets:
            try:
                frames = tuned.codec.decode(packet)
            except av.error.FFmpegError:
                self.stats["decode_errors"] += tuned.seen_key  # errors before the first IDR are normal
                continue
            if generation != self._generation:
                break  # zapped meanwhile: these pictures belong to the old channel
            for frame in frames:
                if not tuned.seen_key:
                    if not frame.key_frame:
                        continue
                    tuned.seen_key = True
                image = frame.to_ndarray(format="bgr24")
                if generation != self._generation:
                    break
                self._show(tuned, image, generation)

    def _present(self, image: np.ndarray, *, first: bool, interval: float) -> None:
        """Queue a decoded picture for its presentation time (see the class docstring)."""
        now = time.monotonic()
        with self._lock:
            due = max(now, self._last_due + interval)
            if first or due - now > self.max_lag:  # a new channel, or too far behind: skip ahead
                self._queue.clear()
                self._latest, due = image, now
            else:
                self._queue.append((due, image))
            self._last_due = due

    def _show(self, tuned: _Tuned, image: np.ndarray, generation: int) -> None:
        self._present(image, first=not tuned.first_frame, interval=tuned.frame_interval())
        self.stats["frames"] += 1
        if not tuned.first_frame:
            tuned.first_frame = True
            self.stats["zap_times"].append(round(time.monotonic() - tuned.joined_at, 3))
        self._set_state("playing", generation)
        if self.on_frame:
            try:
                self.on_frame(image)
            except Exception:
                log.exception("on_frame callback failed")


@dataclass
class _Tuned:
    """What the worker holds for the channel it is on; a fresh one on every tune or stop."""

    sock: socket.socket | None = None
    demux: _Demux = field(default_factory=_Demux)
    codec: Any = None
    seen_key: bool = False  # decoding shows pictures only from the first key frame on
    first_frame: bool = False  # the zap time is measured to the first picture
    joined_at: float = field(default_factory=time.monotonic)
    last_data: float = field(default_factory=time.monotonic)

    def frame_interval(self) -> float:
        """Seconds between two pictures of the stream (its coded frame rate; 25 fps when unknown)."""
        rate = getattr(self.codec, "framerate", None)
        return 1.0 / float(rate) if rate else 0.04


class RigIptv:
    """Everything an emulated box needs for IPTV on one rig, in one object (for lab/emulator/box.py).

    Builds (or attaches to) the rig's link from ``rig.network`` -- a namespace when running as root,
    else loopback-only -- plays the channel map from a :class:`~lab.emulator.headend.Headend` on
    the lab side, and runs an :class:`IptvReceiver` in the box's namespace. The box calls
    ``tune(n)`` on every zap, ``stop()`` on standby/power off, shows ``latest_frame`` as its live
    picture (``ScreenState.live_frame``) and switches to its "no signal on this channel" screen
    while ``state == "no_signal"`` (``on_state`` tells it when)::

        iptv = RigIptv(rig.name, rig.network, on_state=box.on_iptv_state).start()
        iptv.tune(3)
        state = state.replace(kind="live", channel=3, live_frame=iptv.latest_frame)
        ...
        iptv.close()        # on emulator exit: stops playout, removes the namespace it made
    """

    def __init__(
        self,
        rig_name: str,
        network: Any,
        *,
        channel_map: ChannelMap | None = None,
        cache_dir: str | None = None,
        on_state: StateCallback | None = None,
        on_frame: FrameCallback | None = None,
        absent: tuple[int, ...] = (),
        settings: Any = None,
    ) -> None:
        from lab.emulator.headend import EncodeSettings, Headend

        self.rig_name = rig_name
        self.network = network
        self.channel_map = channel_map or ChannelMap.default()
        self._on_state = on_state
        self._on_frame = on_frame
        self._cache_dir = cache_dir
        self._absent = absent
        self._settings = settings or EncodeSettings()
        self.link: Any = None
        self.headend: Headend | None = None
        self.receiver: IptvReceiver | None = None

    def start(self) -> RigIptv:
        from lab.emulator.headend import Headend
        from lab.network.netns import open_link

        self.link = open_link(self.rig_name, self.network)
        playing = [c.number for c in self.channel_map.channels if c.number not in self._absent]
        self.headend = Headend(
            self.channel_map,
            interface_ip=self.link.lab_ip,
            cache_dir=self._cache_dir,
            channels=playing,
            settings=self._settings,
            on_demand_interface=self.link.lab_if if self.link.namespace else None,
        ).start()
        self.receiver = IptvReceiver(
            self.channel_map,
            namespace=self.link.namespace,
            interface_ip="0.0.0.0" if self.link.namespace else "127.0.0.1",
            on_state=self._on_state,
            on_frame=self._on_frame,
        ).start()
        return self

    @property
    def state(self) -> str:
        return self.receiver.state if self.receiver else "idle"

    def tune(self, number: int) -> None:
        if self.receiver:
            self.receiver.tune(number)

    def stop(self) -> None:
        if self.receiver:
            self.receiver.stop()

    def latest_frame(self) -> np.ndarray | None:
        return self.receiver.latest_frame() if self.receiver else None

    def close(self) -> None:
        if self.receiver:
            self.receiver.close()
        if self.headend:
            self.headend.stop()
        if self.link is not None:
            self.link.down()  # only removes what this object built
        self.receiver = self.headend = self.link = None


__all__ = ["STATES", "IptvReceiver", "RigIptv"]
