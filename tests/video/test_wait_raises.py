"""Waiters raise: a filed device fault with the deciding frame, an infra error when the capture is to blame,
a precondition that is never a fault, and Screen page objects on the same engine."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lab.errors import DeviceFault, InfraError, TestError
from lab.video import (
    Frame,
    PreconditionFailed,
    Screen,
    VideoCheckFailed,
    precondition,
    wait_for_black,
    wait_for_freeze,
    wait_for_match,
    wait_for_motion,
    wait_for_picture,
    wait_until,
)
from lab.video.screen import ScreenAssets


def _scene(logo: float, t: float = 0.0) -> np.ndarray:
    """A grey picture with a moving ball; ``logo`` (0-1) fades a channel logo in."""
    image = np.full((240, 320, 3), 60, np.uint8)
    x = int(40 + 100 * t) % 200
    cv2.rectangle(image, (x, 150), (x + 30, 180), (0, 200, 255), -1)
    if logo:
        patch = image[10:50, 250:310].astype(np.float32)
        full = np.zeros(patch.shape, np.uint8)
        full[:] = (200, 40, 40)
        cv2.putText(full, "5", (18, 35), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 3)
        image[10:50, 250:310] = (patch * (1 - logo) + full.astype(np.float32) * logo).astype(np.uint8)
    return image


LOGO = _scene(1.0)[10:50, 250:310].copy()


def test_the_readme_example_raises_a_device_fault_with_the_deciding_frame() -> None:
    still = [Frame(_scene(0.0, 0.0), i / 25, i) for i in range(200)]
    with pytest.raises(VideoCheckFailed) as raised:
        wait_for_motion(still, timeout_secs=5, rig="stb-a")
    fault = raised.value
    assert isinstance(fault, DeviceFault) and isinstance(fault, AssertionError)  # filed, a failed test
    assert fault.symptom == "video-frozen" and fault.rig == "stb-a"
    assert fault.result.frame is not None and fault.result.frame.seq == 125  # the frame at the deadline
    assert fault.evidence["frames"] == 126 and fault.evidence["dropped"] == 0 and fault.evidence["seq"] == 125
    assert "5 s of frame time" in str(fault)


def test_a_failed_match_carries_the_best_frame_not_the_latest() -> None:
    """A logo fading half in and out again: the evidence is the frame where it came closest."""
    levels = [0.0] * 20 + [0.1 * k for k in range(1, 7)] + [0.6 - 0.1 * k for k in range(1, 7)] + [0.0] * 40
    frames = [Frame(_scene(a, i / 25), i / 25, i) for i, a in enumerate(levels)]
    with pytest.raises(VideoCheckFailed) as raised:
        wait_for_match(LOGO, frames, timeout_secs=2.5, region=Region_top_right(), symptom="no-logo")
    result = raised.value.result
    assert raised.value.symptom == "no-logo"
    assert 20 <= result.frame.seq <= 31 and result.score > 0.9  # where the logo showed, not the latest frame
    assert result.details["frames"] == 64  # 2.5 s of 25 fps: frames 0..63 (the deadline frame is 2.52 s)
    assert not wait_for_match(LOGO, frames, timeout_secs=2.5, check=False)


def Region_top_right():  # noqa: N802 - reads as a constant
    from lab.video import Region

    return Region(200, 0, 120, 80)


def test_a_capture_that_dropped_most_frames_is_infra_not_a_fault() -> None:
    """Only every 4th frame reached the waiter: 'no motion' was not observed, it is the capture's failure."""
    still = [Frame(_scene(0.0, 0.0), i / 25, i) for i in range(0, 200, 4)]
    with pytest.raises(InfraError, match="dropped 111 of 149 frames") as raised:
        wait_for_motion(still, timeout_secs=5.9, rig="stb-a")
    assert raised.value.instrument == "video" and raised.value.rig == "stb-a"
    # a wait that succeeds on what it did see is still a success
    moving = [Frame(_scene(0.0, i / 25), i / 25, i) for i in range(0, 200, 4)]
    assert wait_for_motion(moving, timeout_secs=5)


def test_frame_time_not_wall_time_decides_black_and_picture() -> None:
    black = np.zeros((240, 320, 3), np.uint8)
    frames = [Frame(black if 30 <= i < 80 else _scene(0, i / 25), i / 25, i) for i in range(150)]
    got = wait_for_black(frames, timeout_secs=3, stable_secs=1.0)
    assert got.frame.seq == 30 and got.details["stable_for"] == pytest.approx(1.0)
    with pytest.raises(VideoCheckFailed) as raised:
        wait_for_black(frames, timeout_secs=3, stable_secs=2.5)  # black lasts 2.0 s only
    assert raised.value.symptom == "not-black"
    picture = wait_for_picture(frames[30:], timeout_secs=3)
    assert picture.frame.seq == 80
    with pytest.raises(VideoCheckFailed) as raised:
        wait_for_picture(frames[30:70], timeout_secs=1.0)
    assert raised.value.symptom == "black-screen"


def test_wait_for_freeze() -> None:
    frames = [Frame(_scene(0, min(i, 60) / 25), i / 25, i) for i in range(150)]  # still from frame 60
    frozen = wait_for_freeze(frames, timeout_secs=3, duration=2.0)
    assert frozen.details["since"] == pytest.approx(60 / 25)
    with pytest.raises(VideoCheckFailed):
        wait_for_freeze(frames[:100], timeout_secs=1, duration=2.0)


def test_no_frames_at_all_is_no_signal() -> None:
    with pytest.raises(VideoCheckFailed) as raised:
        wait_until(bool, [], timeout_secs=1)
    assert raised.value.symptom == "no-signal"


def test_precondition_turns_a_fault_into_a_test_error_and_lets_infra_through() -> None:
    still = [Frame(_scene(0.0, 0.0), i / 25, i) for i in range(60)]
    with pytest.raises(PreconditionFailed) as raised, precondition("live TV playing"):
        wait_for_motion(still, timeout_secs=1)
    error = raised.value
    assert isinstance(error, TestError) and not isinstance(error, AssertionError)  # never a fault, never filed
    assert error.what == "live TV playing" and error.symptom == "video-frozen"
    assert error.result is not None and error.result.frame.seq == 25  # the evidence frame survives
    with pytest.raises(PreconditionFailed), precondition("box answers"):
        raise AssertionError("the box did not answer")  # what a failed assert in setup raises
    with pytest.raises(InfraError), precondition("capture up"):
        raise InfraError("capture lost", rig="stb-a", instrument="video")


class _Banner(Screen):
    @property
    def is_visible(self) -> bool:
        return bool(self.logo)

    @property
    def logo(self):
        return self.match_image("logo.png", "logo")


def test_screen_page_object_on_the_engine(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "logo.png"), LOGO)
    (tmp_path / "regions.json").write_text(json.dumps({"logo": [200, 0, 320, 80], "size": [320, 240]}))
    assets = ScreenAssets.load(tmp_path)
    frames = [Frame(_scene(1.0 if i >= 40 else 0.0, i / 25), i / 25, i) for i in range(100)]
    assert not _Banner(frames[0], assets=assets)
    screen = _Banner.wait(frames, assets=assets, timeout_secs=3)
    assert screen and screen.frame.seq == 40 and screen.logo.region.x == 250
    with pytest.raises(VideoCheckFailed) as raised:
        _Banner.wait(frames[:30], assets=assets, timeout_secs=1)
    assert raised.value.symptom == "_banner-not-seen"


def test_screen_assets_errors_name_file_and_key(tmp_path: Path) -> None:
    with pytest.raises(TestError, match="regions.json does not exist"):
        ScreenAssets.load(tmp_path)
    (tmp_path / "regions.json").write_text('{"banner": [10, 10, 5, 20]}')
    with pytest.raises(TestError, match=r"regions.json: region 'banner' is empty"):
        ScreenAssets.load(tmp_path)
    (tmp_path / "regions.json").write_text('{"banner": [10, 10, 50, 20]}')
    with pytest.raises(TestError, match="no region 'logo'"):
        ScreenAssets.load(tmp_path).region("logo")
