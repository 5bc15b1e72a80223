"""The emulated box's HDMI output as an HDMI-to-IP encoder serves it: MJPEG over HTTP.

``GET /stream.mjpg`` answers ``multipart/x-mixed-replace; boundary=frame`` with one JPEG per
part (``Content-Type: image/jpeg`` and ``Content-Length`` per part) at the configured frame rate;
``GET /snapshot.jpg`` answers one JPEG. Anything ``cv2.VideoCapture`` opens over HTTP reads it.

How it behaves (docs/wire.md, "HDMI output"):

* One producer thread renders and encodes each frame once and shares the bytes among all
  clients; with no client connected it encodes nothing.
* Frames are paced against a monotonic clock on a fixed grid (``t0 + k / fps``): no drift, and
  ticks missed under load are skipped rather than sent in a burst (a slow client simply gets the
  newest frame when it is ready for one).
* Static screens (menus, standby, a frozen picture) reuse the previous JPEG when nothing changed.
* Each part also carries ``X-Timestamp`` (wall-clock seconds of its frame slot) and
  ``X-Frame-Seq`` (the number of its slot on that grid; a gap is a frame this client missed, or a
  slot the encoder itself was too late for under load), as mjpg-streamer-style
  encoders do; clients that only want JPEGs (OpenCV/FFmpeg) ignore them.
* While the box is powered off (``get_state().kind == "off"``) there is no signal: new requests
  get ``503 Service Unavailable`` and open streams are closed, so a capture sees no frames at all
  (not black ones).

Example::

    from lab.emulator.mjpeg import HdmiServer
    from lab.emulator.screen import ScreenState

    state = ScreenState(kind="live", channel=1)
    server = HdmiServer("127.0.0.1", 0, lambda: state, 1280, 720, 25)
    server.start()
    print(server.url)             # http://127.0.0.1:PORT/stream.mjpg
    ...
    server.stop()
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np

from lab.emulator.hdmi import Renderer
from lab.emulator.screen import ScreenState
from lab.emulator.service import SocketServerService

log = logging.getLogger(__name__)

BOUNDARY = "frame"


def encode_jpeg(img: np.ndarray, quality: int = 80) -> bytes:
    """JPEG bytes of a BGR picture (what an HDMI-to-IP encoder sends per frame)."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV only fails on invalid input
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    hdmi: HdmiServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    server_version = "stblab-hdmi-encoder/1.0"
    timeout = 15  # a client that neither sends a request nor reads its stream is dropped

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        log.debug("hdmi %s: " + format, self.client_address[0], *args)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        hdmi = self.server.hdmi
        path = self.path.split("?", 1)[0]
        if path not in ("/stream.mjpg", "/snapshot.jpg", "/"):
            self._plain(404, "not found: try /stream.mjpg or /snapshot.jpg\n")
            return
        if not hdmi.signal():
            self._plain(503, "no HDMI signal: the box is powered off\n", retry_after=True)
            return
        if path == "/":
            self._plain(
                200, f"stblab HDMI encoder {hdmi.width}x{hdmi.height}@{hdmi.fps:g}: /stream.mjpg /snapshot.jpg\n"
            )
        elif path == "/snapshot.jpg":
            self._snapshot(hdmi)
        else:
            self._stream(hdmi)

    def _plain(self, code: int, text: str, *, retry_after: bool = False) -> None:
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if retry_after:
            self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(body)

    def _snapshot(self, hdmi: HdmiServer) -> None:
        with hdmi._client():
            frame = hdmi._next_frame(0, timeout=max(2.0, 5.0 / hdmi.fps))
        if frame is None or frame[1] is None:
            self._plain(503, "no HDMI signal: the box is powered off\n", retry_after=True)
            return
        jpeg = frame[1]
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(jpeg)))
        self.send_header("Cache-Control", "no-cache, no-store")
        self.end_headers()
        self.wfile.write(jpeg)

    def _stream(self, hdmi: HdmiServer) -> None:
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.close_connection = True
        with hdmi._client(self.connection):
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache, no-store, must-revalidate")
            self.send_header("Pragma", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            seq = 0
            while True:
                frame = hdmi._next_frame(seq, timeout=1.0)
                if hdmi._stopped.is_set():
                    return
                if frame is None:
                    continue  # no frame within a second (producer starved): keep waiting
                seq, jpeg, stamp = frame
                if jpeg is None:
                    return  # powered off: close the stream, no black frames
                head = (
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
                    f"X-Timestamp: {stamp:.6f}\r\nX-Frame-Seq: {seq}\r\n\r\n"
                ).encode()
                try:
                    self.wfile.write(head + jpeg + b"\r\n")
                    self.wfile.flush()
                except OSError:
                    return  # client went away


class HdmiServer(SocketServerService):
    """MJPEG-over-HTTP HDMI output of one emulated box (see module docstring).

    ``get_state`` is called once per frame from the producer thread and must be cheap and
    thread-safe (returning an immutable :class:`ScreenState` held by the box is ideal).
    ``port`` 0 picks a free port; :attr:`port` tells which after :meth:`start`.
    """

    thread_name = "hdmi-http"

    def __init__(
        self,
        host: str,
        port: int,
        get_state: Callable[[], ScreenState],
        width: int = 1280,
        height: int = 720,
        fps: float = 25.0,
        *,
        quality: int = 80,
    ) -> None:
        if fps <= 0 or not math.isfinite(fps):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        if not 1 <= quality <= 100:
            raise ValueError(f"JPEG quality must be 1..100, got {quality!r}")
        super().__init__(host, port)
        self.width = width
        self.height = height
        self.fps = float(fps)
        self.quality = quality
        self._get_state = get_state
        self._renderer = Renderer(width, height)  # validates the size early
        self._cond = threading.Condition()
        self._clients = 0
        self._sockets: set[socket.socket] = set()
        self._seq = 0
        self._jpeg: bytes | None = None
        self._stamp = 0.0  # wall-clock time of the frame's tick
        self._state_at = 0.0  # monotonic time at which the published frame's screen state was read
        self._stopped = self._stopping  # set by stop(): streams end, the producer exits
        self._producer: threading.Thread | None = None
        self._resting = False  # the producer waits for a client (no encoding)
        self.frames_encoded = 0  # JPEG encodes done (static screens reuse the last JPEG)
        self.frames_published = 0  # frames handed to clients
        self.ticks_skipped = 0  # frame slots missed because the producer was late
        self._wall_offset = time.time() - time.monotonic()

    # -- lifecycle (see lab.emulator.service) ----------------------------------------------
    def _make_server(self) -> socketserver.BaseServer:
        server = _Server((self.host or "127.0.0.1", self.requested_port), _Handler)
        server.hdmi = self
        return server

    def _on_start(self) -> None:
        self._producer = threading.Thread(target=self._produce, name="hdmi-producer", daemon=True)
        self._producer.start()

    def _on_stop(self) -> None:
        with self._cond:
            self._cond.notify_all()
            sockets = list(self._sockets)
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def _after_stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.join(timeout=self.join_timeout)

    @property
    def url(self) -> str:
        """The stream's URL, as a rig file's ``video.url`` names it."""
        return f"http://{self.host}:{self.port}/stream.mjpg"

    @property
    def clients(self) -> int:
        """Number of connected stream/snapshot clients."""
        with self._cond:
            return self._clients

    @property
    def resting(self) -> bool:
        """True while the producer waits for a client and encodes nothing."""
        with self._cond:
            return self._resting

    def signal(self) -> bool:
        """True when the box drives its HDMI output (state kind is anything but ``off``)."""
        try:
            return self._get_state().kind != "off"
        except Exception:
            log.exception("hdmi: get_state failed")
            return False

    # -- clients ----------------------------------------------------------------------------
    def _client(self, sock: socket.socket | None = None) -> _ClientSlot:
        return _ClientSlot(self, sock)

    def _next_frame(self, after: int, timeout: float) -> tuple[int, bytes | None, float] | None:
        """The first published frame with a sequence number above ``after`` (None on timeout).

        ``after=0`` means "the next frame produced from now on", for low latency on connect: a
        frame whose screen state was read after this call, never one rendered from the state
        before (a snapshot taken right after a state change shows the change, even when the
        producer was busy rendering the previous screen).
        """
        asked = time.monotonic()
        deadline = asked + timeout
        with self._cond:
            fresh = after == 0
            if fresh:
                after = self._seq
            while (self._seq <= after or (fresh and self._state_at < asked)) and not self._stopped.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            if self._stopped.is_set():
                return None
            return self._seq, self._jpeg, self._stamp

    # -- producer ---------------------------------------------------------------------------
    def _produce(self) -> None:
        period = 1.0 / self.fps
        last_key: object = None
        last_jpeg: bytes | None = None
        while not self._stopped.is_set():
            with self._cond:
                while self._clients == 0 and not self._stopped.is_set():
                    self._resting = True
                    self._cond.wait()
                self._resting = False
            if self._stopped.is_set():
                return
            t0 = time.monotonic()
            k = 0
            first_seq = self._seq + 1  # slot k is frame first_seq + k: a slot skipped is a gap in X-Frame-Seq
            while not self._stopped.is_set():
                with self._cond:
                    if self._clients == 0:
                        break
                tick = t0 + k * period
                now = time.monotonic()
                if tick > now:
                    if self._stopped.wait(tick - now):
                        return
                elif now - tick >= period:
                    missed = int((now - tick) / period)
                    self.ticks_skipped += missed
                    k += missed
                    tick = t0 + k * period
                slot = first_seq + k
                k += 1
                state_at = time.monotonic()
                try:
                    state = self._get_state()
                except Exception:
                    log.exception("hdmi: get_state failed; frame skipped")
                    continue
                if state.kind == "off":
                    self._publish(None, tick, state_at, slot)
                    last_key = last_jpeg = None
                    continue
                try:
                    key = self._renderer.content_key(state, tick)
                    if key is not None and key == last_key and last_jpeg is not None:
                        jpeg = last_jpeg
                    else:
                        jpeg = encode_jpeg(self._renderer.render(state, tick), self.quality)
                        self.frames_encoded += 1
                        last_key, last_jpeg = key, jpeg
                except Exception:
                    log.exception("hdmi: rendering %s failed; frame skipped", state.kind)
                    continue
                self._publish(jpeg, tick, state_at, slot)

    def _publish(self, jpeg: bytes | None, tick: float, state_at: float, slot: int) -> None:
        with self._cond:
            self._seq = max(slot, self._seq + 1)
            self._state_at = state_at
            self._jpeg = jpeg
            self._stamp = tick + self._wall_offset
            if jpeg is not None:
                self.frames_published += 1
            self._cond.notify_all()


class _ClientSlot:
    """Counts a client in while it is connected, so the producer runs only when watched."""

    def __init__(self, hdmi: HdmiServer, sock: socket.socket | None) -> None:
        self._hdmi = hdmi
        self._sock = sock

    def __enter__(self) -> None:
        with self._hdmi._cond:
            self._hdmi._clients += 1
            if self._sock is not None:
                self._hdmi._sockets.add(self._sock)
            self._hdmi._cond.notify_all()

    def __exit__(self, *exc: object) -> None:
        with self._hdmi._cond:
            self._hdmi._clients -= 1
            if self._sock is not None:
                self._hdmi._sockets.discard(self._sock)


__all__ = ["BOUNDARY", "HdmiServer"]
