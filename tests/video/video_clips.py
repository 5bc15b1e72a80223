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


# --- clips made by ffmpeg alone (filter graphs), truth from the recipe ---------------------------

SEGMENT_KINDS = ("moving", "black", "still", "fade_out", "fade_in")


def make_ffmpeg_clip(
    path: Path,
    segments: list[tuple[str, float]],
    *,
    source: str = "testsrc2",
    still_source: str | None = None,
    size: str = "320x180",
    rate: int = FPS,
    codec: tuple[str, ...] = ("-c:v", "mpeg4", "-q:v", "4"),
) -> dict[str, list[tuple[float, float]]]:
    """Encode ``segments`` (kind, seconds) cut from an ffmpeg lavfi ``source`` with ffmpeg's own filters.

    ``moving``: the source as it plays; ``black``: drawbox filled black; ``still``: one frame of
    ``still_source`` (default the source) held with ``tpad`` clone; ``fade_out``/``fade_in``: the
    moving source faded to/from black with ``fade``. Returns the truth: black and frozen intervals
    (a still segment after black, or black after a still, each counted on its own, as
    freezedetect does: a cut from one still picture to another starts a new freeze).
    """
    total = sum(d for _, d in segments) + 1
    n = len(segments)
    head = f"{source}=size={size}:rate={rate},trim=duration={total},format=yuv420p,split={n}"
    graph = [head + "".join(f"[s{i}]" for i in range(n))]
    truth: dict[str, list[tuple[float, float]]] = {"black": [], "frozen": []}
    t = 0.0
    for i, (kind, d) in enumerate(segments):
        if kind not in SEGMENT_KINDS:
            raise ValueError(f"segment kind must be one of {SEGMENT_KINDS}, not {kind!r}")
        trim = f"trim=start={t}:duration={d},setpts=PTS-STARTPTS"
        if kind == "moving":
            graph.append(f"[s{i}]{trim}[v{i}]")
        elif kind == "black":
            graph.append(f"[s{i}]{trim},drawbox=c=black:t=fill[v{i}]")
            truth["black"].append((t, t + d))
            truth["frozen"].append((t, t + d))
        elif kind == "still":
            if still_source:  # a static source (smptehdbars) is a still picture by itself
                graph.append(f"{still_source}=size={size}:rate={rate},trim=duration={d},format=yuv420p[v{i}]")
                graph.append(f"[s{i}]nullsink")
            else:  # one frame of the moving source held with tpad
                one = f"trim=start={t}:duration={1 / rate},setpts=PTS-STARTPTS"
                graph.append(f"[s{i}]{one},tpad=stop_mode=clone:stop_duration={d - 1 / rate}[v{i}]")
            truth["frozen"].append((t, t + d))
        elif kind == "fade_out":
            graph.append(f"[s{i}]{trim},fade=t=out:st=0:d={d}[v{i}]")
        else:
            graph.append(f"[s{i}]{trim},fade=t=in:st=0:d={d}[v{i}]")
        t += d
    graph.append("".join(f"[v{i}]" for i in range(n)) + f"concat=n={n}:v=1:a=0[out]")
    cmd = ["ffmpeg", "-v", "error", "-y", "-filter_complex", ";".join(graph), "-map", "[out]", *codec, str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    truth = _merge_touching(truth)
    # next to a fade, where a black or still interval begins is a matter of thresholds: "soft",
    # compared with ffmpeg's own blackdetect/freezedetect instead of the recipe
    edges, t = [], 0.0
    for kind, d in segments:
        if kind.startswith("fade"):
            edges += [t, t + d]
        t += d
    for kind in ("black", "frozen"):
        soft = []
        for a, b in truth[kind]:
            soft_start = any(abs(a - e) < 1e-6 for e in edges)
            soft_end = any(abs(b - e) < 1e-6 for e in edges)
            if soft_start or soft_end:
                soft.append((a, b, soft_start, soft_end))
        truth[kind] = [iv for iv in truth[kind] if not any(iv == s[:2] for s in soft)]
        truth[f"{kind}_soft"] = soft  # type: ignore[assignment]
    return truth


def _merge_touching(truth: dict[str, list[tuple[float, float]]]) -> dict[str, list[tuple[float, float]]]:
    """Black segments that touch are one interval; frozen ones are not (each still is its own picture)."""
    out = {k: list(v) for k, v in truth.items()}
    merged: list[tuple[float, float]] = []
    for a, b in sorted(out["black"]):
        if merged and abs(merged[-1][1] - a) < 1e-9:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    out["black"] = merged
    return out
