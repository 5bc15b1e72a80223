"""Text on screen through Tesseract (optional: ``pip install stblab[ocr]`` and the ``tesseract`` binary).

Without pytesseract or the binary, :func:`ocr_available` says so and :func:`ocr` raises an
:class:`~lab.errors.InfraError` naming what is missing (the lab host lacks a tool; never the box's fault).

Example::

    if ocr_available():
        assert "Settings" in ocr(frame, region=Region(0, 0, 640, 80)).text
        assert match_text("No signal", frame)
"""

from __future__ import annotations

import shutil

import cv2
import numpy as np

from lab.errors import InfraError
from lab.video.frame import Frame, as_frame
from lab.video.region import Region
from lab.video.result import CheckResult


class TextResult(CheckResult):
    """Truthy when text was read (``ocr``) or the wanted text was found (``match_text``).

    ``text`` holds what was read.
    """

    @property
    def text(self) -> str:
        return str(self.details.get("text", ""))


def ocr_available() -> str | None:
    """``None`` when OCR works here, else the reason it does not (what to install)."""
    try:
        import pytesseract  # noqa: F401
    except ImportError:
        return "pytesseract is not installed (pip install 'stblab[ocr]')"
    if shutil.which("tesseract") is None:
        return "the tesseract binary is not on PATH (apt-get install tesseract-ocr)"
    return None


def _prepare(image: np.ndarray, scale: float) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if scale != 1.0:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    # Tesseract reads dark text on light ground best
    if grey.mean() < 128:
        grey = 255 - grey
    return grey


def ocr(
    frame: Frame | np.ndarray,
    *,
    region: Region = Region.ALL,
    lang: str = "eng",
    config: str = "--psm 6",
    scale: float = 2.0,
) -> TextResult:
    """Read the text in ``region``; truthy when any text was read."""
    reason = ocr_available()
    if reason:
        raise InfraError(f"OCR unavailable: {reason}", instrument="video")
    import pytesseract

    frame = as_frame(frame)
    box = region.clip(frame.width, frame.height)
    if box is None:
        raise ValueError(f"region {region} lies outside the {frame.width}x{frame.height} frame")
    text = pytesseract.image_to_string(_prepare(frame.image[box.slices()], scale), lang=lang, config=config).strip()
    return TextResult("text", bool(text), frame, box, float(len(text)), {"text": text})


def match_text(
    text: str,
    frame: Frame | np.ndarray,
    *,
    region: Region = Region.ALL,
    case_sensitive: bool = False,
    **kwargs: object,
) -> TextResult:
    """Truthy when ``text`` appears in what OCR reads in ``region`` (whitespace-insensitive)."""
    read = ocr(frame, region=region, **kwargs)  # type: ignore[arg-type]

    def norm(s: str) -> str:
        s = " ".join(s.split())
        return s if case_sensitive else s.lower()

    found = norm(text) in norm(read.text)
    return TextResult("text", found, read.frame, read.region, read.score, {"text": read.text, "wanted": text})
