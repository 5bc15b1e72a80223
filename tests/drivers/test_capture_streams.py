"""The capture driver on live streams that ffmpeg itself serves: frame time from the stream's PTS, honest drops.

A clip with known black and still segments (made by ffmpeg's filters) is played in real time by
``ffmpeg -re`` as H.264 MPEG-TS over UDP and over HTTP; the driver reads it through OpenCV. The
demuxer's start-up probe delivers the first second in one burst, which used to shift every edge
by that much; frame times now come from PTS, so each edge lies within two frame periods of the
recipe, and every frame the sender produced is accounted for.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.drivers.capture import Capture
from lab.emulator.testing import free_port
from lab.video import FreezeDetector, is_black, wait_for_black

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "video"))
from support import udp_bound  # noqa: E402
from video_clips import make_ffmpeg_clip  # noqa: E402

pytestmark = [
    pytest.mark.real_peer,  # ffmpeg serving the streams, in real time
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg binary not installed"),
]
PERIOD = 1 / 25
RECIPE = [("moving", 4.0), ("black", 2.0), ("moving", 1.0), ("still", 3.0), ("moving", 1.0)]


@pytest.fixture(scope="module")
def live_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """H.264 in MPEG-TS as a live encoder sends it: zero latency, no scene cuts, a key frame every 2 s."""
    path = tmp_path_factory.mktemp("live") / "live.ts"
    codec = ("-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "50",
             "-x264-params", "scenecut=0", "-f", "mpegts")  # fmt: skip
    truth = make_ffmpeg_clip(path, RECIPE, size="480x270", codec=codec)
    return path, truth


def _serve(clip: Path, url: str, *extra: str) -> subprocess.Popen:
    cmd = ["ffmpeg", "-v", "error", "-re", "-i", str(clip), "-c", "copy", *extra, url]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _listening(port: int, timeout: float = 10.0) -> None:
    """Wait until something listens on TCP ``port`` without connecting (ffmpeg -listen serves one client)."""
    deadline = time.monotonic() + timeout
    needle = f":{port:04X} 00000000:0000 0A"
    while time.monotonic() < deadline:
        if needle in Path("/proc/net/tcp").read_text():
            return
        time.sleep(0.05)  # polling the kernel's socket table, bounded by the deadline
    raise AssertionError(f"ffmpeg did not listen on port {port} within {timeout} s")


def _take(capture: Capture, seconds: float, sender: subprocess.Popen) -> list:
    """The frames of ``seconds`` of frame time from the first one (bounded: the sender plays in real time)."""
    frames = []
    deadline = time.monotonic() + seconds + 15
    stream: Iterator = capture.frames(timeout=seconds + 15, since=0.0)
    for frame in stream:
        frames.append(frame)
        if frame.time - frames[0].time >= seconds - PERIOD / 2 or time.monotonic() > deadline:
            break
    sender.wait(timeout=20)
    return frames


def _judge(frames: list, capture: Capture) -> None:
    t0 = frames[0].time
    assert capture.time_source == "pts"
    assert frames[0].seq == 0 and len(frames) == frames[-1].seq + 1  # every frame, numbered by PTS
    worst = max(abs(f.time - t0 - f.seq * PERIOD) for f in frames)
    assert worst <= 2 * PERIOD, worst  # frame k of the clip is k periods after the first, start-up burst or not
    assert capture.dropped == 0  # all delivered: no drop invented from bursty arrivals
    black = [f.time - t0 for f in frames if is_black(f)]
    assert abs(black[0] - 4.0) <= 2 * PERIOD and abs(black[-1] - (6.0 - PERIOD)) <= 2 * PERIOD, (black[0], black[-1])
    arrivals = [f.meta["arrival"] for f in frames]
    first_black = next(f for f in frames if is_black(f))
    late_start = arrivals[0] - t0  # the start-up burst: the first frame came this much after it was made
    assert first_black.meta["arrival"] >= first_black.time - 1e-6  # never stamped after its arrival
    detector = FreezeDetector(duration=1.0)
    stills = {}
    for f in frames:
        result = detector.update(f)
        if result:
            stills.setdefault(round(result.details["since"] - t0, 3), result.details["still_for"])
    starts = sorted(stills)
    assert any(abs(s - 7.0) <= 0.5 for s in starts), (starts, late_start)  # the x264 still, within 0.5 s
    assert any(abs(s - 7.0) <= 2 * PERIOD + 0.005 for s in starts), starts  # in fact within two frame periods


def test_h264_over_udp_frame_time_from_pts(live_clip) -> None:
    clip, _ = live_clip
    port = free_port()
    with Capture(f"udp://127.0.0.1:{port}", rig_name="udp-rig", fps_hint=25, open_timeout=10) as capture:
        udp_bound(port)  # an IPTV stream is judged from its first frame: send once the capture listens
        sender = _serve(clip, f"udp://127.0.0.1:{port}?pkt_size=1316", "-f", "mpegts")
        frames = _take(capture, 10.5, sender)
    _judge(frames, capture)


def test_h264_mpegts_over_http_from_ffmpeg(live_clip) -> None:
    clip, _ = live_clip
    port = free_port()
    url = f"http://127.0.0.1:{port}/live.ts"
    sender = _serve(clip, url, "-f", "mpegts", "-listen", "1")
    _listening(port)
    with Capture(url, rig_name="http-rig", fps_hint=25, open_timeout=10) as capture:
        frames = _take(capture, 10.5, sender)
    _judge(frames, capture)


def test_waiters_judge_the_live_stream_in_frame_time(live_clip) -> None:
    """The library's waiter on the live capture: black found 4 s of stream time after the start."""
    clip, _ = live_clip
    port = free_port()
    with Capture(f"udp://127.0.0.1:{port}", rig_name="udp-rig", fps_hint=25, open_timeout=10) as capture:
        udp_bound(port)  # an IPTV stream is judged from its first frame: send once the capture listens
        sender = _serve(clip, f"udp://127.0.0.1:{port}?pkt_size=1316", "-f", "mpegts")
        capture.next_frame(timeout=15)
        first = capture.ring.entries()[0]  # the stream's first frame, still in the ring
        assert first.seq == 0
        black = wait_for_black(capture, timeout_secs=6, since=first.time, rig="udp-rig")
        sender.wait(timeout=20)
    assert abs(black.time - first.time - 4.0) <= 2 * PERIOD, black.describe()


def test_mjpeg_parts_stamped_by_the_encoder_give_time_and_exact_drops() -> None:
    """The emulated box's HDMI encoder stamps each part (X-Timestamp, X-Frame-Seq): frame time is the
    encoder's clock and drops come from its counter, so a busy host invents none."""
    from lab.emulator.mjpeg import HdmiServer
    from lab.emulator.screen import ScreenState

    server = HdmiServer("127.0.0.1", 0, lambda: ScreenState(kind="live", channel=2), width=320, height=180, fps=25)
    server.start()
    try:
        with Capture(f"http://127.0.0.1:{server.port}/stream.mjpg", rig_name="emu", fps_hint=25) as capture:
            frames = []
            for frame in capture.frames(timeout=20, since=0.0):
                frames.append(frame)
                if frame.time - frames[0].time >= 3.0:
                    break
            assert capture.time_source == "x-timestamp" and capture.raw_jpeg
            gaps = sum(b.seq - a.seq - 1 for a, b in zip(frames, frames[1:], strict=False))
            assert capture.dropped == gaps  # what the encoder's counter says, not a guess
            assert all(f.meta["arrival"] >= f.time - 1e-6 for f in frames)
            worst = max(abs(f.time - frames[0].time - (f.seq - frames[0].seq) * PERIOD) for f in frames)
            assert worst <= 3 * PERIOD, worst  # the encoder's slots, not our arrival jitter
    finally:
        server.stop()


def test_mjpeg_over_http_from_ffmpeg(live_clip) -> None:
    """ffmpeg's own mpjpeg muxer as the encoder (parts without timestamps): arrival time, same verdicts."""
    clip, _ = live_clip
    port = free_port()
    url = f"http://127.0.0.1:{port}/stream.mjpg"
    cmd = ["ffmpeg", "-v", "error", "-re", "-i", str(clip), "-c:v", "mjpeg", "-q:v", "5", "-f", "mpjpeg",
           "-content_type", "multipart/x-mixed-replace;boundary=ffmpeg", "-listen", "1", url]  # fmt: skip
    sender = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _listening(port)
    with Capture(url, rig_name="mjpeg-rig", fps_hint=25, open_timeout=10) as capture:
        frames = _take(capture, 10.5, sender)
        assert capture.raw_jpeg and capture.time_source == "arrival"
    assert len(frames) >= 250  # delivered by ffmpeg's HTTP server, read part by part
    t0 = frames[0].time
    black = [f.time - t0 for f in frames if is_black(f)]
    assert abs(black[0] - 4.0) <= 0.25 and abs(black[-1] - 5.96) <= 0.25, (black[0], black[-1])


def test_slots_the_encoder_was_late_for_are_counted_as_drops_and_time_stays_on_its_grid() -> None:
    """A producer held up for a fifth of a second (a busy host) skips those slots: they are gaps in
    X-Frame-Seq, so the capture counts them as dropped and frame time still follows the slots."""
    from lab.emulator.mjpeg import HdmiServer
    from lab.emulator.screen import ScreenState

    calls = 0

    def state() -> ScreenState:
        nonlocal calls
        calls += 1
        if calls == 30:
            time.sleep(0.2)  # the encoder is late: five slots go by
        return ScreenState(kind="live", channel=2)

    server = HdmiServer("127.0.0.1", 0, state, width=320, height=180, fps=25)
    server.start()
    try:
        with Capture(f"http://127.0.0.1:{server.port}/stream.mjpg", rig_name="emu", fps_hint=25) as capture:
            frames = []
            for frame in capture.frames(timeout=20, since=0.0):
                frames.append(frame)
                if frame.time - frames[0].time >= 2.5:
                    break
            gaps = sum(b.seq - a.seq - 1 for a, b in zip(frames, frames[1:], strict=False))
            assert capture.dropped == gaps >= 4, (capture.dropped, gaps)
            worst = max(abs(f.time - frames[0].time - (f.seq - frames[0].seq) * PERIOD) for f in frames)
            assert worst <= 3 * PERIOD, worst
    finally:
        server.stop()
