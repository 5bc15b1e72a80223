"""`stblab video scan` finds a no-signal screen held between live pictures (made by ffmpeg at test time).

The scan judges colour only for the first picture of a held screen and keeps that verdict while the
picture stays the same: the screen must still be reported whole, edges within a frame, and the
black that follows it must stay black, not no-signal.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from lab.video import scan

FRAME = 1 / 25


def _clip(path: Path) -> Path:
    """testsrc2 2 s, a blue "no signal" screen with a centred panel 2 s, black 1 s, testsrc2 1 s (x264, 25 fps)."""
    graph = (
        "testsrc2=size=1280x720:rate=25,trim=duration=2,setpts=PTS-STARTPTS[a];"
        "color=c=0x1030c0:size=1280x720:rate=25:duration=2,format=yuv420p,"
        "drawbox=x=440:y=260:w=400:h=200:c=0xd0d0d0:t=fill[b];"
        "color=c=black:size=1280x720:rate=25:duration=1,format=yuv420p[c];"
        "testsrc2=size=1280x720:rate=25,trim=start=5:duration=1,setpts=PTS-STARTPTS[d];"
        "[a][b][c][d]concat=n=4:v=1:a=0,format=yuv420p[out]"
    )
    cmd = ["ffmpeg", "-v", "error", "-y", "-filter_complex", graph, "-map", "[out]",
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", str(path)]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=60)
    return path


def test_a_held_no_signal_screen_is_reported_whole(tmp_path: Path) -> None:
    report = scan(_clip(tmp_path / "nosignal.mp4"))
    (screen,) = report.intervals["no_picture"]
    assert abs(screen.start - 2.0) <= FRAME + 1e-6 and abs(screen.end - 4.0) <= FRAME + 1e-6, screen
    (black,) = report.intervals["black"]
    assert abs(black.start - 4.0) <= FRAME + 1e-6 and abs(black.end - 5.0) <= FRAME + 1e-6, black
    assert report.frames == 150
