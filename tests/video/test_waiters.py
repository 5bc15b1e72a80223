"""Waiters: frame-time timeouts, the deciding frame, dropped frames, transitions; also over a live MJPEG stream."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
from video_clips import Clip

from lab.errors import InfraError
from lab.video import (
    FileSource,
    Frame,
    ListSource,
    Region,
    detect_transition,
    is_black,
    wait_for_match,
    wait_for_motion,
    wait_until,
)


def _scene(logo: bool, t: float = 0.0) -> np.ndarray:
    image = np.full((240, 320, 3), 60, np.uint8)
    x = int(40 + 100 * t) % 200
    cv2.rectangle(image, (x, 150), (x + 30, 180), (0, 200, 255), -1)  # moving ball
    if logo:
        cv2.rectangle(image, (250, 10), (310, 50), (200, 40, 40), -1)
        cv2.putText(image, "5", (268, 45), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 3)
    return image


LOGO = _scene(True)[10:50, 250:310].copy()


def test_wait_for_match_times_out_in_frame_time_not_wall_time() -> None:
    frames = [Frame(_scene(False, i / 25), i / 25, i) for i in range(100)]  # 4 s of stream, delivered at once
    t0 = time.monotonic()
    result = wait_for_match(LOGO, frames, timeout_secs=2.0, check=False)
    assert not result
    assert time.monotonic() - t0 < 2.0  # judged on frame time: no sleeping
    assert result.details["frames"] == 51 and result.details["elapsed"] == pytest.approx(2.0)


def test_wait_for_match_keeps_the_deciding_frame() -> None:
    frames = [Frame(_scene(i >= 30, i / 25), i / 25, i) for i in range(100)]
    result = wait_for_match(LOGO, frames, timeout_secs=5.0, region=Region(200, 0, 120, 80))
    assert result and result.frame.seq == 30 and result.time == pytest.approx(1.2)
    assert result.region == Region(250, 10, 60, 40)
    two = wait_for_match(LOGO, frames, timeout_secs=5.0, consecutive=2)
    assert two.frame.seq == 31


def test_since_skips_older_frames_and_starts_the_clock() -> None:
    """``since`` = when the key was pressed: older frames do not count, the timeout runs from it."""
    frames = [Frame(_scene(i >= 30, i / 25), i / 25, i) for i in range(100)]
    result = wait_for_match(LOGO, frames, since=2.0, timeout_secs=1.0)
    assert result and result.frame.seq == 50  # the logo was up before; the first frame since 2.0 s decides
    late = [Frame(_scene(i >= 80, i / 25), i / 25, i) for i in range(100)]
    missed = wait_for_match(LOGO, late, since=2.0, timeout_secs=1.0, check=False)  # logo at 3.2 s: after 2.0 + 1.0
    assert not missed and missed.details["elapsed"] == pytest.approx(1.0)


def test_dropped_frames_are_counted() -> None:
    frames = [Frame(_scene(False, i / 25), i / 25, i) for i in range(50) if not 10 <= i < 15]
    source = ListSource(frames)
    source.dropped = 7  # what the source itself says it dropped so far
    result = wait_for_match(LOGO, source, timeout_secs=1.5, check=False)
    assert not result and result.details["dropped"] == 5


def test_wait_for_motion_x_of_y() -> None:
    still = [Frame(_scene(False, 0.0), i / 25, i) for i in range(25)]
    moving = [Frame(_scene(False, i / 25), i / 25, i) for i in range(25, 50)]
    result = wait_for_motion(still + moving, consecutive="5/10", timeout_secs=3)
    assert result and result.frame.seq == 29  # the 5th moving pair decides
    assert result.region.intersect(Region(0, 150, 320, 30)) is not None
    assert not wait_for_motion(still, timeout_secs=3, check=False)
    # the moving ball masked out: no motion
    assert not wait_for_motion(still + moving, mask=~Region(0, 140, 320, 50), timeout_secs=3, check=False)


def test_wait_until_stable() -> None:
    black = np.zeros((240, 320, 3), np.uint8)
    pattern = [black] * 10 + [_scene(False)] * 5 + [black] * 2 + [_scene(False)] * 40
    frames = [Frame(img, i / 25, i) for i, img in enumerate(pattern)]
    result = wait_until(lambda f: not is_black(f), frames, timeout_secs=5.0, stable_secs=1.0)
    assert result and result.frame.seq == 17  # the flicker at 10..14 was not stable
    assert result.details["stable_for"] == pytest.approx(1.0)
    assert not wait_until(lambda f: not is_black(f), frames[:40], timeout_secs=1.0, stable_secs=1.0, check=False)


class _Screen:
    """A simulated box on a simulated clock: a key press starts a 0.4 s animation 0.2 s later."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pressed_at: float | None = None

    def clock(self) -> float:
        return self.now

    def press(self) -> None:
        self.pressed_at = self.now

    def frames(self, timeout: float) -> Iterator[Frame]:
        for seq in range(1000):
            self.now = seq / 25
            image = np.full((240, 320, 3), 30, np.uint8)
            if self.pressed_at is not None:
                progress = min(1.0, max(0.0, (self.now - self.pressed_at - 0.2) / 0.4))
                image[:, : int(320 * progress)] = (180, 120, 40)
            yield Frame(image, self.now, seq)


def test_detect_transition_reports_timings() -> None:
    screen = _Screen()
    result = detect_transition(screen.press, screen, stable_secs=0.5, timeout_secs=5, clock=screen.clock)
    assert result, result.describe()
    d = result.details
    assert d["press_time"] == 0.0
    assert d["latency"] == pytest.approx(0.24, abs=0.041)  # first changed frame after 0.2 s
    assert d["end_time"] == pytest.approx(0.6, abs=0.041)  # animation over at 0.6 s
    assert d["animation_duration"] == pytest.approx(0.36, abs=0.081)


def test_detect_transition_without_change() -> None:
    screen = _Screen()
    result = detect_transition(lambda: None, screen, stable_secs=0.5, timeout_secs=1.0, clock=screen.clock)
    assert not result and result.details["why"] == "no-change"


def test_waiters_on_a_clip_file(segments_clip: Clip) -> None:
    reference = segments_clip.frames[100][20:120, 20:180].copy()  # a patch of the frozen picture
    result = wait_for_match(reference, segments_clip.path, timeout_secs=10)
    assert result and result.time == pytest.approx(4.0)
    source = FileSource(segments_clip.path)
    assert wait_until(lambda f: is_black(f), source, timeout_secs=10).time == pytest.approx(2.0)


def test_a_source_that_yields_garbage_is_a_lab_problem() -> None:
    with pytest.raises(InfraError, match="not a Frame"):
        wait_for_motion([np.zeros((10, 10, 3), np.uint8)], timeout_secs=1)
    with pytest.raises(TypeError, match="not a frame source"):
        wait_for_motion(42, timeout_secs=1)


# --- live: the emulated box's HDMI output over real MJPEG/HTTP, read with OpenCV --------------


def _live_frames(url: str, timeout: float) -> Iterator[Frame]:
    cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
    assert cap.isOpened(), f"cannot open {url}"
    try:
        deadline = time.monotonic() + timeout
        seq = 0
        while time.monotonic() < deadline:
            ok, image = cap.read()
            if not ok:
                return
            yield Frame(image, time.monotonic(), seq)
            seq += 1
    finally:
        cap.release()


class _LiveCapture:
    def __init__(self, url: str) -> None:
        self.url = url

    def frames(self, timeout: float) -> Iterator[Frame]:
        return _live_frames(self.url, timeout)


@pytest.fixture
def emulated_hdmi():
    mjpeg = pytest.importorskip("lab.emulator.mjpeg")
    screen = pytest.importorskip("lab.emulator.screen")
    state = {"value": screen.ScreenState(kind="home")}
    lock = threading.Lock()

    def get_state():
        with lock:
            return state["value"]

    def set_state(value):
        with lock:
            state["value"] = value

    server = mjpeg.HdmiServer("127.0.0.1", 0, get_state, width=640, height=360, fps=25)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}/stream.mjpg", set_state, screen
    finally:
        server.stop()


def test_live_stream_motion_and_menu_transition(emulated_hdmi) -> None:
    url, set_state, screen = emulated_hdmi
    capture = _LiveCapture(url)
    # the home menu stands still below its status bar (whose HH:MM clock ticks once a minute, and
    # did so within the 1 s window in a clean-clone run)
    below_clock = Region(0, 60, 640, 300)
    assert not wait_for_motion(capture, timeout_secs=1.0, region=below_clock, check=False)
    set_state(screen.ScreenState(kind="live", channel=2))
    assert wait_for_motion(capture, timeout_secs=3.0, consecutive="5/8")
    set_state(screen.ScreenState(kind="home"))
    result = detect_transition(
        lambda: set_state(screen.ScreenState(kind="settings")), capture, stable_secs=0.5, timeout_secs=5
    )
    assert result, result.describe()
    assert 0 <= result.details["latency"] < 1.0 and result.details["duration"] < 2.0


def test_waiters_over_the_capture_driver(emulated_hdmi) -> None:
    """The real capture driver (lab.drivers.capture) on the emulated box's MJPEG output."""
    capture_mod = pytest.importorskip("lab.drivers.capture")
    url, set_state, screen = emulated_hdmi
    with capture_mod.Capture(url, rig_name="stb-v", fps_hint=25) as capture:
        set_state(screen.ScreenState(kind="live", channel=3))
        moving = wait_for_motion(capture, timeout_secs=5.0, consecutive="5/8", rig="stb-v")
        assert moving, moving.describe()
        assert moving.frame.meta.get("rig") == "stb-v"
        assert "source_dropped" in moving.details and moving.details["frames"] >= 6
        switched = time.monotonic()
        set_state(screen.ScreenState(kind="standby"))
        black = wait_until(lambda f: is_black(f), capture, timeout_secs=5.0, stable_secs=0.5, since=switched)
        assert black and black.details["stable_for"] >= 0.5 and black.time >= switched
        set_state(screen.ScreenState(kind="home"))
        assert wait_until(lambda f: not is_black(f), capture, timeout_secs=5.0, stable_secs=0.3)
        result = detect_transition(
            lambda: set_state(screen.ScreenState(kind="guide")), capture, stable_secs=0.5, timeout_secs=5
        )
        assert result, result.describe()
        assert 0 <= result.details["latency"] < 1.0


def test_scan_of_a_clip_the_capture_driver_saved(emulated_hdmi, tmp_path) -> None:
    """A rig's failure clip (Capture.save_clip) scanned offline: live video, then the box went black."""
    capture_mod = pytest.importorskip("lab.drivers.capture")
    from lab.video import scan

    url, set_state, screen = emulated_hdmi
    with capture_mod.Capture(url, rig_name="stb-v", fps_hint=25) as capture:
        set_state(screen.ScreenState(kind="live", channel=4))
        assert wait_for_motion(capture, timeout_secs=5.0, consecutive="10/12")
        set_state(screen.ScreenState(kind="standby"))
        assert wait_until(lambda f: is_black(f), capture, timeout_secs=5.0, stable_secs=1.0)
        clip = capture.save_clip(tmp_path / "failure.mkv", seconds=3)
    report = scan(clip)
    assert report.frames >= 15  # 3 s of 25 fps; a loaded machine makes the emulator skip some
    black, motion = report.intervals["black"], report.intervals["motion"]
    assert black and black[-1].end == pytest.approx(report.duration, abs=0.05) and black[-1].duration >= 1.0
    assert motion and motion[0].start < black[-1].start


def test_a_dead_capture_is_an_infra_error_not_a_device_fault() -> None:
    """Nothing listens where the HDMI encoder should be: the waiter raises InfraError naming rig and instrument."""
    capture_mod = pytest.importorskip("lab.drivers.capture")
    testing = pytest.importorskip("lab.emulator.testing")
    url = f"http://127.0.0.1:{testing.free_port()}/stream.mjpg"
    with (
        capture_mod.Capture(url, rig_name="stb-x", lost_after=1.0, open_timeout=1.0) as capture,
        pytest.raises(InfraError) as raised,
    ):
        wait_for_motion(capture, timeout_secs=3.0, rig="stb-x")
    assert raised.value.rig == "stb-x" and raised.value.instrument == "video"
    assert not isinstance(raised.value, AssertionError)  # an error, never a failed check
