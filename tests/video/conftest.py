"""Clips for the video tests: made once per session with ffmpeg, cached under pytest's tmp folder."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from video_clips import Clip, drop_ts_packets, lavfi_frames, make_segments_clip  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if shutil.which("ffmpeg") is None:
        skip = pytest.mark.skip(reason="ffmpeg binary not installed (apt-get install ffmpeg)")
        for item in items:
            if "tests/video" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("video-clips")


@pytest.fixture(scope="session")
def segments_clip(clip_dir: Path) -> Clip:
    """testsrc2 320x240 MJPEG: black [2, 3), frozen [4, 6), fade to black ~7-8.6 s and back."""
    return make_segments_clip(clip_dir / "segments.avi")


@pytest.fixture(scope="session")
def ts_pair(clip_dir: Path) -> tuple[Path, Path, int]:
    """A clean MPEG-2 TS of testsrc2 and a copy with two bursts of video packets dropped."""
    from video_clips import encode

    clean = encode(
        lavfi_frames("testsrc2", 150, 352, 288),
        clip_dir / "clean.ts",
        "-c:v", "mpeg2video", "-b:v", "1500k", "-g", "12", "-bf", "0", "-f", "mpegts",
    )  # fmt: skip
    damaged = clip_dir / "damaged.ts"
    dropped = drop_ts_packets(clean, damaged, [(1200, 1230), (2500, 2510)])
    return clean, damaged, dropped
