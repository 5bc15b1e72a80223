"""Offline scan of a recorded clip: when was the picture black, frozen, moving, blocky, or absent?

The scan runs the same detectors the waiters use (:func:`~lab.video.black.is_black`,
:class:`~lab.video.motion.MotionDetector`, :class:`~lab.video.freeze.FreezeDetector`,
:class:`~lab.video.artifacts.ArtifactDetector`, :func:`~lab.video.screens.is_no_signal`) over
every frame and reports intervals in seconds of stream time from the first frame. Conventions
follow ffmpeg's blackdetect/freezedetect: an interval ends at the time of the first frame that
no longer shows the condition (or one frame period after the last frame); a freeze starts at the
first frame of the still run and is reported once it lasted ``freeze_duration``.

"Artifacts" are frames the decoder reported as concealed (damaged by lost data) and the frames
after them up to the next key frame (damage propagates through predicted frames), plus frames
whose blockiness jumps above the clip's own baseline (for captures that carry no decoder flags).

"No picture" covers time the stream has no frames for (gaps in the timestamps, as after lost
packets) and frames showing a no-signal screen.

Example::

    report = scan("clip.ts")
    for interval in report.intervals["black"]:
        print(interval.start, interval.end)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.video.artifacts import ArtifactDetector
from lab.video.black import is_black
from lab.video.frame import Frame
from lab.video.freeze import FreezeDetector
from lab.video.motion import MotionDetector
from lab.video.screens import is_no_signal
from lab.video.source import FileSource

KINDS = ("black", "frozen", "motion", "artifacts", "no_picture")


@dataclass(frozen=True)
class Interval:
    """A stretch of stream time ``[start, end)`` in seconds that showed ``kind``."""

    kind: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {"start": round(self.start, 4), "end": round(self.end, 4), "duration": round(self.duration, 4)}


@dataclass
class ScanOptions:
    """Thresholds of the scan (defaults follow ffmpeg blackdetect/freezedetect where those apply)."""

    black_pixel_threshold: float = 0.10
    black_picture_threshold: float = 0.98
    black_min: float = 0.0
    freeze_duration: float = 2.0
    freeze_noise: int = 12
    motion_noise: int = 25
    motion_merge_gap: float = 0.5
    motion_min: float = 0.0
    artifact_block_size: int = 16
    artifact_merge_gap: float = 0.2
    detect_artifacts: bool = True  # blockiness baseline (decoder-reported damage is always used)
    detect_no_signal: bool = True

    def __post_init__(self) -> None:
        for name in ("black_pixel_threshold", "black_picture_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a fraction between 0 and 1, not {getattr(self, name)}")
        for name in ("black_min", "freeze_duration", "motion_merge_gap", "motion_min", "artifact_merge_gap"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, not {getattr(self, name)}")
        if self.artifact_block_size < 2:
            raise ValueError(f"artifact_block_size must be at least 2, not {self.artifact_block_size}")


@dataclass
class ScanReport:
    """What :func:`scan` found: intervals per kind, frames read, frames missing, the stream's frame rate."""

    path: str
    frames: int = 0
    dropped: int = 0
    fps: float | None = None
    duration: float = 0.0
    stream_start: float | None = None  # the first frame's presentation time in the file (s)
    decode_errors: int = 0  # packets the decoder refused outright
    intervals: dict[str, list[Interval]] = field(default_factory=lambda: {k: [] for k in KINDS})

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "frames": self.frames,
            "dropped": self.dropped,
            "fps": self.fps,
            "duration": round(self.duration, 4),
            "stream_start": self.stream_start,
            "decode_errors": self.decode_errors,
            "intervals": {k: [i.to_dict() for i in v] for k, v in self.intervals.items()},
        }


class _Track:
    """Turns a per-frame condition into intervals, merging gaps up to ``merge_gap`` and dropping short ones."""

    def __init__(self, kind: str, out: list[Interval], merge_gap: float = 0.0, min_duration: float = 0.0) -> None:
        self.kind, self.out, self.merge_gap, self.min_duration = kind, out, merge_gap, min_duration
        self.start: float | None = None
        self.end: float | None = None

    def update(self, on: bool, t: float, start: float | None = None) -> None:
        if on:
            if self.start is None:
                self.start = t if start is None else start
            elif self.end is not None and t - self.end > self.merge_gap:
                self._emit()
                self.start = t if start is None else start
            self.end = None
        elif self.start is not None and self.end is None:
            self.end = t

    def close(self, t_end: float) -> None:
        if self.start is not None and self.end is None:
            self.end = t_end
        self._emit()

    def _emit(self) -> None:
        if self.start is not None and self.end is not None and self.end - self.start >= self.min_duration - 1e-9:
            self.out.append(Interval(self.kind, self.start, self.end))
        self.start = self.end = None


def scan(path: str | Path, options: ScanOptions | None = None, *, backend: str = "pyav") -> ScanReport:
    """Scan a clip and return the intervals of each kind (see the module docstring)."""
    opts = options or ScanOptions()
    source = FileSource(path, backend=backend)
    report = ScanReport(str(path))
    iv = report.intervals
    black = _Track("black", iv["black"], 0.0, opts.black_min)
    frozen = _Track("frozen", iv["frozen"])
    moving = _Track("motion", iv["motion"], opts.motion_merge_gap, opts.motion_min)
    blocky = _Track("artifacts", iv["artifacts"], opts.artifact_merge_gap)
    nosig = _Track("no_picture", iv["no_picture"])
    motion = MotionDetector(noise_threshold=opts.motion_noise)
    freeze = FreezeDetector(duration=opts.freeze_duration, noise_threshold=opts.freeze_noise)
    artifacts = ArtifactDetector(block_size=opts.artifact_block_size)
    previous: Frame | None = None
    period = 0.0
    damaged = False
    for frame in source:
        if previous is None:
            report.fps = source.fps
            start = frame.meta.get("stream_time")
            report.stream_start = float(start) if isinstance(start, int | float) else None
            period = 1.0 / source.fps if source.fps else 0.0
        t = frame.time
        if previous is not None and period and t - previous.time > 1.5 * period:
            gap = _Track("no_picture", iv["no_picture"])
            gap.update(True, previous.time + period)
            gap.close(t)
        report.frames += 1
        black.update(
            bool(
                is_black(
                    frame,
                    mode="ratio",
                    pixel_threshold=opts.black_pixel_threshold,
                    picture_threshold=opts.black_picture_threshold,
                )
            ),
            t,
        )
        moving.update(bool(motion.update(frame).details.get("this_frame")), t)
        f = freeze.update(frame)
        frozen.update(bool(f), t, start=float(f.details["since"]) if f else None)
        if frame.meta.get("corrupt"):
            damaged = True
        elif frame.meta.get("key_frame"):
            damaged = False
        blocky.update(damaged or (opts.detect_artifacts and bool(artifacts.update(frame))), t)
        if opts.detect_no_signal:
            nosig.update(bool(is_no_signal(frame)), t)
        previous = frame
    end = (previous.time + period) if previous is not None else 0.0
    for track in (black, frozen, moving, blocky, nosig):
        track.close(end)
    iv["no_picture"].sort(key=lambda i: i.start)
    report.dropped = source.dropped
    report.decode_errors = source.decode_errors
    report.duration = end
    return report
