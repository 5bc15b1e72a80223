"""`stblab video scan` on clips made by ffmpeg alone: every black and frozen interval within one frame of the
recipe's truth, across sources (testsrc2, mandelbrot, smptehdbars), cuts (black, still, moving, fades), codecs
(MPEG-4, H.264, MPEG-2) and containers (MP4, TS), with and without lost packets; ffmpeg's own
blackdetect/freezedetect on the same files as the second opinion."""

from __future__ import annotations

from pathlib import Path

import pytest
from video_clips import drop_ts_packets, ffmpeg_detect, make_ffmpeg_clip

from lab.video import ScanOptions, scan

FRAME = 1 / 25
CODECS = {
    "mpeg4-mp4": ("mp4", ("-c:v", "mpeg4", "-q:v", "5")),
    # scenecut off and a long GOP: the still after a cut is refined P-frame by P-frame, as x264 does live
    "x264-mp4": ("mp4", ("-c:v", "libx264", "-preset", "veryfast", "-crf", "30",
                         "-x264-params", "scenecut=0:keyint=250")),
    "x264-ts": ("ts", ("-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-bf", "2", "-f", "mpegts")),
    "mpeg2-ts": ("ts", ("-c:v", "mpeg2video", "-b:v", "1500k", "-g", "12", "-f", "mpegts")),
}  # fmt: skip
RECIPE = [
    ("moving", 2.0),
    ("black", 2.0),
    ("still", 3.0),
    ("moving", 1.52),
    ("still", 2.48),
    ("fade_out", 1.0),
    ("black", 1.0),
    ("fade_in", 1.0),
    ("moving", 1.0),
]  # fmt: skip (whole frames: 25 fps)


def _within_a_frame(found: list[tuple[float, float]], truth: list[tuple[float, float]]) -> bool:
    return len(found) == len(truth) and all(
        abs(a - c) <= FRAME + 1e-6 and abs(b - d) <= FRAME + 1e-6 for (a, b), (c, d) in zip(found, truth, strict=True)
    )


def _pairs(report, kind: str) -> list[tuple[float, float]]:
    return [(i.start, i.end) for i in report.intervals[kind]]


def _judge(found: list[tuple[float, float]], truth: dict, kind: str, ffmpeg: list[tuple[float, float]]) -> None:
    """Every interval of the recipe within a frame; those next to fades as ffmpeg finds them; nothing else."""
    expected = list(truth[kind])
    for a, b, soft_start, soft_end in truth[f"{kind}_soft"]:  # an edge next to a fade: as ffmpeg puts it
        near = [f for f in ffmpeg if f[0] < b + FRAME and a - FRAME < f[1]]
        if soft_start and near:
            a = min(f[0] for f in near)
        if soft_end and near:
            b = max(f[1] for f in near)
        expected.append((a, b))
    expected.sort()
    assert _within_a_frame(found, expected), (kind, found, expected, ffmpeg)


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_cuts_between_black_still_and_moving(codec: str, tmp_path: Path) -> None:
    """The still right after black is found (it was missed before), on every codec."""
    ext, args = CODECS[codec]
    path = tmp_path / f"cuts.{ext}"
    truth = make_ffmpeg_clip(path, RECIPE, codec=args)
    report = scan(path, ScanOptions(freeze_duration=1.0))
    ffmpeg = ffmpeg_detect(path, "blackdetect=d=0,freezedetect=d=1")
    _judge(_pairs(report, "frozen"), truth, "frozen", ffmpeg["frozen"])
    _judge(_pairs(report, "black"), truth, "black", ffmpeg["black"])
    assert report.intervals["no_picture"] == []  # (a starved fade-in may be blocky: artifacts are allowed)


@pytest.mark.parametrize("source", ["mandelbrot", "smptehdbars"])
def test_other_sources(source: str, tmp_path: Path) -> None:
    """mandelbrot zooms slowly (motion close to the noise floor must not read as a freeze);
    smptehdbars is a still picture by nature (colour bars held after live video)."""
    path = tmp_path / f"{source}.mp4"
    if source == "smptehdbars":
        recipe = [("moving", 2.0), ("still", 3.0), ("black", 1.0), ("moving", 2.0)]
        truth = make_ffmpeg_clip(path, recipe, still_source="smptehdbars", codec=CODECS["x264-mp4"][1])
    else:
        recipe = [("moving", 3.0), ("black", 1.52), ("still", 2.48), ("moving", 2.0)]
        truth = make_ffmpeg_clip(path, recipe, source="mandelbrot", codec=CODECS["x264-mp4"][1])
    report = scan(path, ScanOptions(freeze_duration=1.0))
    assert _within_a_frame(_pairs(report, "frozen"), truth["frozen"]), (_pairs(report, "frozen"), truth)
    assert _within_a_frame(_pairs(report, "black"), truth["black"]), (_pairs(report, "black"), truth)


def test_lost_packets_in_the_moving_part(tmp_path: Path) -> None:
    """Video packets dropped while the picture moves: the decoder conceals, the black and frozen
    intervals stay where they were, the damage is reported as artifacts or missing pictures."""
    clean = tmp_path / "clean.ts"
    recipe = [("moving", 3.0), ("black", 2.0), ("still", 3.0), ("moving", 2.0)]
    truth = make_ffmpeg_clip(clean, recipe, codec=CODECS["mpeg2-ts"][1])
    damaged = tmp_path / "damaged.ts"
    size = clean.stat().st_size // 188
    dropped = drop_ts_packets(clean, damaged, [(int(size * 0.08), int(size * 0.08) + 25)])
    assert dropped > 0
    report = scan(damaged, ScanOptions(freeze_duration=1.0))
    assert _within_a_frame(_pairs(report, "frozen"), truth["frozen"]), (_pairs(report, "frozen"), truth)
    assert _within_a_frame(_pairs(report, "black"), truth["black"]), (_pairs(report, "black"), truth)
    damage = report.intervals["artifacts"] + report.intervals["no_picture"]
    assert damage and all(i.end <= 3.0 + FRAME for i in damage), damage
