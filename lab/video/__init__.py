"""Video verification: checks on captured frames, regions and masks, waiters, offline scan.

Checks are pure functions over BGR frames that return truthy results carrying the frame, its
time, the region and a score (``result.save_png(path)`` draws the evidence). Waiters watch a
frame source (the capture driver, a clip, a list of frames) with timeouts in frame time and raise
:class:`VideoCheckFailed` (a DeviceFault with the deciding frame) when what they wait for is not
seen. :class:`Screen` is the base of page objects; :func:`precondition` marks setup steps whose
failure is not the fault under test.

Example::

    from lab.video import Mask, Region, is_black, match, wait_for_match, wait_for_motion

    assert not is_black(capture.latest())
    wait_for_match("images/ch5-logo.png", capture, timeout_secs=5)      # raises when not seen
    wait_for_motion(capture, mask=~Mask(Region(0, 560, 1280, 160)), consecutive="10/20")
"""

from lab.video.artifacts import ArtifactDetector, BlockinessResult, blockiness
from lab.video.black import BlackResult, is_black
from lab.video.frame import Frame, as_frame, load_frame
from lab.video.freeze import FreezeDetector, FreezeResult, detect_freeze
from lab.video.match import MatchParameters, MatchResult, Template, match, match_all
from lab.video.motion import MotionDetector, MotionResult, detect_motion
from lab.video.ocr import TextResult, match_text, ocr, ocr_available
from lab.video.precondition import PreconditionFailed, precondition
from lab.video.region import Mask, Region
from lab.video.result import CheckResult, VideoCheckFailed
from lab.video.scan import Interval, ScanOptions, ScanReport, scan
from lab.video.screen import Screen, ScreenAssets
from lab.video.screens import ScreenResult, is_colour_bars, is_no_signal
from lab.video.source import FileSource, ListSource
from lab.video.wait import (
    TransitionResult,
    WaitResult,
    detect_transition,
    wait_for_black,
    wait_for_freeze,
    wait_for_match,
    wait_for_motion,
    wait_for_picture,
    wait_for_text,
    wait_for_transition,
    wait_until,
)

__all__ = [
    "ArtifactDetector",
    "BlackResult",
    "BlockinessResult",
    "CheckResult",
    "FileSource",
    "Frame",
    "FreezeDetector",
    "FreezeResult",
    "Interval",
    "ListSource",
    "Mask",
    "MatchParameters",
    "MatchResult",
    "MotionDetector",
    "MotionResult",
    "PreconditionFailed",
    "Region",
    "ScanOptions",
    "ScanReport",
    "Screen",
    "ScreenAssets",
    "ScreenResult",
    "Template",
    "TextResult",
    "TransitionResult",
    "VideoCheckFailed",
    "WaitResult",
    "as_frame",
    "blockiness",
    "detect_freeze",
    "detect_motion",
    "detect_transition",
    "is_black",
    "is_colour_bars",
    "is_no_signal",
    "load_frame",
    "match",
    "match_all",
    "match_text",
    "ocr",
    "ocr_available",
    "precondition",
    "scan",
    "wait_for_black",
    "wait_for_freeze",
    "wait_for_match",
    "wait_for_motion",
    "wait_for_picture",
    "wait_for_text",
    "wait_for_transition",
    "wait_until",
]
