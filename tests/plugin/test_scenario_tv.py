"""scenarios/tv.py: a failed screen wait is the box's fault only while the capture instrument works."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from lab.errors import InfraError
from lab.video.frame import Frame
from lab.video.result import VideoCheckFailed

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scenarios"))
from tv import Tv  # noqa: E402


class _DyingCapture:
    """Two frozen frames, then nothing: the instrument becomes unreachable ("lost" after lost_after)."""

    lost_after = 1.0
    last_error = "connection refused"

    def __init__(self, *, dies: bool) -> None:
        self.dies = dies
        self.stopped_at: float | None = None

    @property
    def signal(self) -> str:
        if self.stopped_at is None or time.monotonic() - self.stopped_at < 0.3:
            return "signal"
        return "lost" if self.dies and time.monotonic() - self.stopped_at >= self.lost_after else "no-signal"

    def frames(self, timeout: float, since: float | None = None) -> Iterator[Frame]:
        image = np.full((720, 1280, 3), 80, np.uint8)
        for i in range(2):
            yield Frame(image, time.monotonic(), i)
        self.stopped_at = time.monotonic()
        time.sleep(0.5)


def test_frames_stopping_mid_wait_on_a_lost_capture_is_an_infra_error():
    tv = Tv(_DyingCapture(dies=True), model="STB-4K-X1", rig="r")
    with pytest.raises(InfraError, match="capture lost: connection refused") as err:
        tv.expect_motion(timeout=0.5)
    assert err.value.instrument == "video" and err.value.rig == "r"


def test_frames_stopping_while_the_capture_answers_is_the_boxs_fault():
    tv = Tv(_DyingCapture(dies=False), model="STB-4K-X1", rig="r")
    with pytest.raises(VideoCheckFailed, match="moving video not seen"):
        tv.expect_motion(timeout=0.5)
