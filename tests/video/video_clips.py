"""Test clips made with ffmpeg's own sources, with their truth written down as they are made."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FPS = 25
W, H = 320, 240


def lavfi_frames(source: str, n: int, width: int = W, height: int = H, rate: int = FPS) -> np.ndarray:
    """``n`` BGR frames of an ffmpeg lavfi source (testsrc2, smptebars, ...)."""
    cmd = [
        "ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"{source}=size={width}x{height}:rate={rate}",
        "-frames:v", str(n), "-f", "rawvideo", "-pix_fmt", "bgr24", "-",
    ]  # fmt: skip
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(n, height, width, 3)


def encode(frames: np.ndarray, path: Path, *args: str, rate: int = FPS) -> Path:
    """Encode BGR frames with ffmpeg (rawvideo on stdin); ``args`` are the output options."""
    n, height, width, _ = frames.shape
    cmd = [
        "ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
        "-r", str(rate), "-i", "-", *args, str(path),
    ]  # fmt: skip
    subprocess.run(cmd, input=frames.tobytes(), check=True)
    return path


@dataclass
class Clip:
    path: Path
    frames: np.ndarray
    truth: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


def make_segments_clip(path: Path) -> Clip:
    """testsrc2 with a hard black cut, a 2 s freeze, and a fade to black and back (MJPEG, as HDMI encoders send).

    Truth (seconds): black [2.0, 3.0); frozen [4.0, 6.0); the fade's darkest frames are judged by
    comparing with ffmpeg blackdetect on the same file.
    """
    src = lavfi_frames("testsrc2", 263).copy()
    out = src.copy()
    out[50:75] = 0
    out[100:150] = src[100]
    for k, i in enumerate(range(175, 200)):
        out[i] = (src[i].astype(np.float32) * (1 - (k + 1) / 25)).astype(np.uint8)
    out[200:213] = 0
    for k, i in enumerate(range(213, 238)):
        out[i] = (src[i].astype(np.float32) * ((k + 1) / 26)).astype(np.uint8)
    encode(out, path, "-c:v", "mjpeg", "-q:v", "3", "-f", "avi")
    return Clip(path, out, {"black": [(2.0, 3.0)], "frozen": [(4.0, 6.0)]})


def drop_ts_packets(src: Path, dst: Path, ranges: list[tuple[int, int]], pid: int = 0x100) -> int:
    """Copy an MPEG-TS file leaving out the packets of ``pid`` whose index falls in ``ranges``."""
    data = src.read_bytes()
    kept, dropped = [], 0
    for index in range(0, len(data) // 188):
        packet = data[index * 188 : (index + 1) * 188]
        packet_pid = ((packet[1] & 0x1F) << 8) | packet[2]
        if packet_pid == pid and any(a <= index < b for a, b in ranges):
            dropped += 1
            continue
        kept.append(packet)
    dst.write_bytes(b"".join(kept))
    return dropped


def ffmpeg_detect(path: Path, filters: str) -> dict[str, list[tuple[float, float]]]:
    """Run ffmpeg blackdetect/freezedetect and return their intervals (seconds from the first frame)."""
    cmd = ["ffmpeg", "-v", "info", "-i", str(path), "-vf", filters, "-f", "null", "-"]
    log = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    out: dict[str, list[tuple[float, float]]] = {"black": [], "frozen": []}
    for m in re.finditer(r"black_start:([\d.]+) black_end:([\d.]+)", log):
        out["black"].append((float(m.group(1)), float(m.group(2))))
    starts = [float(x) for x in re.findall(r"freeze_start: ([\d.]+)", log)]
    ends = [float(x) for x in re.findall(r"freeze_end: ([\d.]+)", log)]
    for a, b in zip(starts, ends, strict=False):
        out["frozen"].append((a, b))
    return out
