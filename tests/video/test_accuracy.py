"""Accuracy on clips with known truth: intervals within one frame of the truth and of ffmpeg's detectors."""

from __future__ import annotations

import av
import numpy as np
import pytest
from video_clips import FPS, Clip, ffmpeg_detect

from lab.video import FileSource, ScanOptions, scan

FRAME = 1 / FPS


def _close(found: list[tuple[float, float]], expected: list[tuple[float, float]], tol: float = FRAME + 1e-6) -> bool:
    return len(found) == len(expected) and all(
        abs(a0 - b0) <= tol and abs(a1 - b1) <= tol for (a0, a1), (b0, b1) in zip(found, expected, strict=True)
    )


@pytest.fixture(scope="module")
def segments_scan(segments_clip: Clip):
    return scan(segments_clip.path, ScanOptions(freeze_duration=1.0))


@pytest.fixture(scope="module")
def segments_ffmpeg(segments_clip: Clip) -> dict[str, list[tuple[float, float]]]:
    return ffmpeg_detect(segments_clip.path, "blackdetect=d=0:pix_th=0.10:pic_th=0.98,freezedetect=n=-60dB:d=1")


def test_black_intervals_match_truth_and_blackdetect(segments_scan, segments_ffmpeg, segments_clip: Clip) -> None:
    black = [(i.start, i.end) for i in segments_scan.intervals["black"]]
    assert len(black) == 2, black
    assert _close(black[:1], segments_clip.truth["black"])  # the hard cut, exactly known
    assert _close(black, segments_ffmpeg["black"])  # the fade's darkest part: as blackdetect judges it
    # the fade's black interval holds the 13 all-black frames and some of the darkest fade frames around them
    fade = black[1]
    assert fade[0] <= 200 * FRAME + 1e-6 and fade[1] >= 213 * FRAME - 1e-6


def test_frozen_intervals_match_truth_and_freezedetect(segments_scan, segments_ffmpeg, segments_clip: Clip) -> None:
    frozen = [(i.start, i.end) for i in segments_scan.intervals["frozen"]]
    assert _close(frozen, segments_ffmpeg["frozen"]), (frozen, segments_ffmpeg["frozen"])
    # ffmpeg counts the 1.0 s black cut as frozen too; the 2 s freeze is the clip's truth
    assert any(_close([f], segments_clip.truth["frozen"]) for f in frozen)


def test_motion_stops_in_the_freeze_and_the_black(segments_scan) -> None:
    motion = [(i.start, i.end) for i in segments_scan.intervals["motion"]]

    def moving(t: float) -> bool:
        return any(a <= t < b for a, b in motion)

    assert moving(1.0) and moving(3.5) and moving(6.5) and moving(10.0)
    assert not moving(2.5)  # black cut
    assert not any(moving(t) for t in np.arange(4.1, 5.96, 0.04))  # frozen
    assert segments_scan.frames == 263 and segments_scan.dropped == 0
    assert segments_scan.intervals["no_picture"] == [] and segments_scan.intervals["artifacts"] == []


def _decoded(path) -> dict[float, np.ndarray]:
    with av.open(str(path)) as container:
        return {round(f.time, 3): f.to_ndarray(format="bgr24") for f in container.decode(video=0)}


def test_damaged_mpeg2_stream_artifacts_and_missing_pictures(ts_pair) -> None:
    clean, damaged, dropped = ts_pair
    assert dropped >= 30  # video packets among the 40 indices
    clean_report, damaged_report = scan(clean), scan(damaged)
    assert clean_report.intervals["artifacts"] == [] and clean_report.intervals["no_picture"] == []
    # truth: the frames whose picture differs from the clean decode (PSNR < 30 dB), at the same PTS
    reference, shown = _decoded(clean), _decoded(damaged)
    t0 = min(reference)
    bad = []
    for t, image in shown.items():
        mse = float(np.mean((image.astype(np.float32) - reference[t]) ** 2))
        if 10 * np.log10(255**2 / max(mse, 1e-9)) < 30:
            bad.append(round(t - t0, 3))
    missing = [round(t - t0, 3) for t in reference if t not in shown]
    assert bad and missing, "the packet drops should damage the picture"
    flagged = [(i.start, i.end) for i in damaged_report.intervals["artifacts"]]
    gaps = [(i.start, i.end) for i in damaged_report.intervals["no_picture"]]

    def inside(t: float, intervals: list[tuple[float, float]]) -> bool:
        return any(a - FRAME - 1e-6 <= t < b + 1e-6 for a, b in intervals)

    assert all(inside(t, flagged) for t in bad), (bad, flagged)
    assert all(inside(t, gaps) for t in missing), (missing, gaps)
    # nothing flagged far from the damage: each interval starts within one frame of a damaged or missing frame
    for a, _ in flagged:
        assert any(abs(a - t) <= FRAME + 1e-6 for t in bad + missing), (a, bad, missing)
    assert damaged_report.dropped == len(missing)


def test_file_source_times_come_from_pts(segments_clip: Clip) -> None:
    frames = list(FileSource(segments_clip.path))
    assert len(frames) == 263
    assert [f.seq for f in frames[:3]] == [0, 1, 2]
    assert frames[100].time == pytest.approx(4.0)
    opencv = list(FileSource(segments_clip.path, backend="opencv"))
    assert len(opencv) == 263 and opencv[100].time == pytest.approx(4.0, abs=1e-3)


def test_macroblocking_burst_found_without_decoder_help(clip_dir) -> None:
    """Captured HDMI carries no decoder flags: a burst of starved-bitrate frames is found by blockiness alone."""
    from video_clips import encode, lavfi_frames

    from lab.video import ArtifactDetector, Frame

    frames = lavfi_frames("testsrc2", 60, 352, 288)
    decoded = {}
    for q in (2, 31):
        options = ["-c:v", "mpeg2video", "-q:v", str(q), "-g", "12", "-f", "mpegts"]
        path = encode(frames, clip_dir / f"burst-q{q}.ts", *options)
        decoded[q] = [f.image for f in FileSource(path)]
    shown = decoded[2][:30] + decoded[31][30:40] + decoded[2][40:]  # frames 30..39 starved
    detector = ArtifactDetector()
    flagged = [i for i, image in enumerate(shown) if detector.update(Frame(image, i / FPS, i))]
    assert flagged and abs(flagged[0] - 30) <= 1 and abs(flagged[-1] - 39) <= 1, flagged
    assert all(29 <= i <= 40 for i in flagged)


def test_static_bars_are_frozen_as_freezedetect_says(clip_dir) -> None:
    """smptebars (a still picture) cut by 1 s of testsrc2: frozen before and after, as ffmpeg judges it."""
    from video_clips import encode, lavfi_frames

    bars = lavfi_frames("smptebars", 1)[0]
    moving = lavfi_frames("testsrc2", 25)
    frames = np.concatenate([np.repeat(bars[None], 75, axis=0), moving, np.repeat(bars[None], 75, axis=0)])
    path = encode(frames, clip_dir / "bars.avi", "-c:v", "mjpeg", "-q:v", "3", "-f", "avi")
    report = scan(path, ScanOptions(freeze_duration=1.0))
    frozen = [(i.start, i.end) for i in report.intervals["frozen"]]
    expected = ffmpeg_detect(path, "freezedetect=n=-60dB:d=1")["frozen"]
    # ffmpeg leaves a freeze still open at the end of the file unreported; the scan closes it at the end
    assert _close(frozen[: len(expected)], expected), (frozen, expected)
    assert _close(frozen, [(0.0, 3.0), (4.0, 7.0)]), frozen
