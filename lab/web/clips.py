"""Clips a browser can play: stored evidence clips (Motion JPEG ``.avi`` and the like) converted to
VP8 in WebM with PyAV, once per clip, cached beside the artifact store.

Browsers play neither Motion JPEG in AVI nor most capture cards' formats; VP8/WebM plays in every
Chromium and Firefox build (Debian's included) without patent-encumbered codecs. Frames keep their
timestamps (rescaled to milliseconds), so the clip shows the capture's real timing.

Example::

    webm = browser_clip(store.artifacts, sha256)     # Path to <root>/.web-clips/<sha>.webm
"""

from __future__ import annotations

import os
import threading
from fractions import Fraction
from pathlib import Path

import av

from lab.rma.artifacts import ArtifactStore

CACHE_DIR = ".web-clips"
MAX_WIDTH = 960
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(sha256: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(sha256, threading.Lock())


def transcode_to_webm(src: Path, dest: Path, *, max_width: int = MAX_WIDTH) -> Path:
    """Write ``src`` (any container and codec FFmpeg reads) as VP8/WebM to ``dest`` (atomically)."""
    tmp = dest.with_suffix(".partial.webm")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp:
        vin = inp.streams.video[0]
        width, height = vin.codec_context.width, vin.codec_context.height
        if width > max_width:
            height = int(height * max_width / width) // 2 * 2
            width = max_width
        width, height = width // 2 * 2, height // 2 * 2
        rate = vin.average_rate or Fraction(25)
        with av.open(str(tmp), "w", format="webm") as out:
            vout = out.add_stream("libvpx", rate=rate)
            vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
            vout.time_base = Fraction(1, 1000)
            vout.options = {"deadline": "realtime", "cpu-used": "8", "crf": "10", "b": "1M"}
            last = -1
            for n, frame in enumerate(inp.decode(vin)):
                t = frame.time if frame.time is not None else n / float(rate)
                pts = max(int(t * 1000), last + 1)
                last = pts
                img = frame.reformat(width=width, height=height, format="yuv420p")
                img.pts, img.time_base = pts, Fraction(1, 1000)
                for packet in vout.encode(img):
                    out.mux(packet)
            for packet in vout.encode(None):
                out.mux(packet)
    os.replace(tmp, dest)
    return dest


def browser_clip(store: ArtifactStore, sha256: str) -> Path:
    """The WebM of a stored clip, converted on first request (concurrent requests wait for one)."""
    dest = store.root / CACHE_DIR / f"{sha256}.webm"
    with _lock(sha256):
        if not dest.is_file():
            transcode_to_webm(store.path_of(sha256), dest)
    return dest
