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

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, for type checkers; at run time they load on first use (see __getattr__)
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

# name -> module: `import lab.video.scan` (the scan command) does not load matching, OCR and waiters
_WHERE: dict[str, str] = {
    "ArtifactDetector": "lab.video.artifacts",
    "BlockinessResult": "lab.video.artifacts",
    "blockiness": "lab.video.artifacts",
    "BlackResult": "lab.video.black",
    "is_black": "lab.video.black",
    "Frame": "lab.video.frame",
    "as_frame": "lab.video.frame",
    "load_frame": "lab.video.frame",
    "FreezeDetector": "lab.video.freeze",
    "FreezeResult": "lab.video.freeze",
    "detect_freeze": "lab.video.freeze",
    "MatchParameters": "lab.video.match",
    "MatchResult": "lab.video.match",
    "Template": "lab.video.match",
    "match": "lab.video.match",
    "match_all": "lab.video.match",
    "MotionDetector": "lab.video.motion",
    "MotionResult": "lab.video.motion",
    "detect_motion": "lab.video.motion",
    "TextResult": "lab.video.ocr",
    "match_text": "lab.video.ocr",
    "ocr": "lab.video.ocr",
    "ocr_available": "lab.video.ocr",
    "PreconditionFailed": "lab.video.precondition",
    "precondition": "lab.video.precondition",
    "Mask": "lab.video.region",
    "Region": "lab.video.region",
    "CheckResult": "lab.video.result",
    "VideoCheckFailed": "lab.video.result",
    "Interval": "lab.video.scan",
    "ScanOptions": "lab.video.scan",
    "ScanReport": "lab.video.scan",
    "scan": "lab.video.scan",
    "Screen": "lab.video.screen",
    "ScreenAssets": "lab.video.screen",
    "ScreenResult": "lab.video.screens",
    "is_colour_bars": "lab.video.screens",
    "is_no_signal": "lab.video.screens",
    "FileSource": "lab.video.source",
    "ListSource": "lab.video.source",
    "TransitionResult": "lab.video.wait",
    "WaitResult": "lab.video.wait",
    "detect_transition": "lab.video.wait",
    "wait_for_black": "lab.video.wait",
    "wait_for_freeze": "lab.video.wait",
    "wait_for_match": "lab.video.wait",
    "wait_for_motion": "lab.video.wait",
    "wait_for_picture": "lab.video.wait",
    "wait_for_text": "lab.video.wait",
    "wait_for_transition": "lab.video.wait",
    "wait_until": "lab.video.wait",
}


def __getattr__(name: str) -> Any:
    """Load the module holding ``name`` on first use (PEP 562), so importing one submodule stays cheap."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Keeps the package's names what they were when it imported everything eagerly.

    Some names are both a submodule and a function (``scan``, ``match``, ``ocr``, ``precondition``):
    importing the submodule sets the package attribute to the module; the function wins, as before.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _WHERE.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


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
