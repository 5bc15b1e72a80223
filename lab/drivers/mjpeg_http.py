"""MJPEG over HTTP (``multipart/x-mixed-replace``) read part by part, with each part's headers.

HDMI-to-IP encoders and mjpg-streamer style servers send one JPEG per part; many stamp each part
with ``X-Timestamp`` (when the frame was grabbed) and a frame counter (``X-Frame-Seq``,
``X-Sequence``). OpenCV's reader drops those headers, so the capture driver reads such streams
itself: the JPEG bytes go into the ring untouched, the timestamp becomes the frame's time (see
:mod:`lab.drivers.stream_clock`) and the counter gives exact drops. A response that is not
multipart (an MPEG-TS or HLS URL over HTTP) is left to OpenCV/FFmpeg.

Example::

    reader = MjpegHttpReader("http://encoder/stream.mjpg", timeout=2.0)
    if reader.open():
        part = reader.read()          # (jpeg bytes, headers) or None at the end
"""

from __future__ import annotations

import http.client
from urllib.parse import urlparse

__all__ = ["MjpegHttpReader", "NotMultipart"]

MAX_PART = 32 * 1024 * 1024


class NotMultipart(Exception):
    """The URL answered, but not with a multipart MJPEG stream (leave it to FFmpeg)."""


class MjpegHttpReader:
    """One HTTP connection to a multipart MJPEG stream (see the module docstring)."""

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        self.url = url
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._resp: http.client.HTTPResponse | None = None
        self.boundary = b""

    def open(self) -> None:
        """Connect and check the response; OSError when unreachable, NotMultipart when it is another stream."""
        p = urlparse(self.url)
        cls = http.client.HTTPSConnection if p.scheme == "https" else http.client.HTTPConnection
        conn = cls(p.hostname or "localhost", p.port, timeout=self.timeout)
        path = (p.path or "/") + (f"?{p.query}" if p.query else "")
        try:
            conn.request("GET", path, headers={"Accept": "multipart/x-mixed-replace, */*"})
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise OSError(f"{self.url}: {exc}") from None
        ctype = resp.getheader("Content-Type", "") or ""
        if resp.status != 200 or not ctype.lower().startswith("multipart/"):
            conn.close()
            raise NotMultipart(f"{self.url}: HTTP {resp.status}, {ctype or 'no content type'}")
        boundary = ""
        for item in ctype.split(";")[1:]:
            key, _, value = item.strip().partition("=")
            if key.lower() == "boundary":
                boundary = value.strip().strip('"')
        if not boundary:
            conn.close()
            raise NotMultipart(f"{self.url}: multipart without a boundary")
        self._conn, self._resp = conn, resp
        self.boundary = boundary.removeprefix("--").encode()

    def read(self) -> tuple[bytes, dict[str, str]] | None:
        """The next part's body and headers (lower-case names); None when the stream ended.

        Parts need a ``Content-Length`` (every encoder and ffmpeg's mpjpeg muxer send one);
        a part without it raises NotMultipart so the caller can fall back to FFmpeg.
        """
        resp = self._resp
        if resp is None:
            return None
        try:
            line = resp.readline(4096)
            while line and not line.strip().startswith(b"--" + self.boundary):
                line = resp.readline(4096)  # the CRLF that ends the previous part, preamble
            if not line or line.strip().endswith(b"--" + self.boundary + b"--"):
                return None
            headers: dict[str, str] = {}
            while True:
                line = resp.readline(4096)
                if not line:
                    return None
                if not line.strip():
                    break
                key, _, value = line.decode("latin-1").partition(":")
                headers[key.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "-1"))
            if not 0 < length <= MAX_PART:
                raise NotMultipart(f"{self.url}: part without a usable Content-Length")
            body = resp.read(length)
        except (OSError, http.client.HTTPException, ValueError):
            return None
        if len(body) < length:
            return None
        return body, headers

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = self._resp = None


def part_stamp(headers: dict[str, str]) -> tuple[float | None, int | None]:
    """(timestamp in seconds, frame counter) from a part's headers, None where absent or malformed."""
    stamp: float | None = None
    seq: int | None = None
    for key in ("x-timestamp", "x-frame-timestamp"):
        if key in headers:
            try:
                stamp = float(headers[key])
            except ValueError:
                stamp = None
            break
    for key in ("x-frame-seq", "x-sequence", "x-frame-number"):
        if key in headers:
            try:
                seq = int(headers[key])
            except ValueError:
                seq = None
            break
    return stamp, seq
