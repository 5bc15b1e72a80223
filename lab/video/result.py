"""The truthy result every check and waiter returns, and how it draws itself.

A result is truthy when the check passed (``if is_black(frame): ...``,
``assert wait_for_motion(capture)``), carries the frame that decided it, that frame's time, the
region it is about and a score, and can save an annotated PNG as evidence.

Example::

    result = match("logo.png", frame)
    if not result:
        result.save_png(run_dir / "no-logo.png")
    result.check("channel logo")      # raises VideoCheckFailed (a DeviceFault) when falsy
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lab.errors import DeviceFault
from lab.video.frame import Frame
from lab.video.region import Region

GREEN = (0, 200, 0)
RED = (0, 0, 230)
YELLOW = (0, 220, 220)


class VideoCheckFailed(DeviceFault):
    """A video check or waiter did not see what the scenario expected; ``result`` holds the evidence."""

    def __init__(self, message: str, result: CheckResult, *, rig: str | None = None, symptom: str | None = None):
        evidence: dict[str, object] = {"check": result.kind, "score": result.score, "time": result.time}
        if result.frame is not None:
            evidence["seq"] = result.frame.seq
        for key in ("frames", "dropped", "elapsed", "source_dropped", "consumer_dropped", "why"):
            if key in result.details:
                evidence[key] = result.details[key]
        if result.region is not None:
            evidence["region"] = result.region.to_dict()
        symptom = symptom or result.symptom
        super().__init__(message, rig=rig, symptom=symptom, excerpt=result.describe(), evidence=evidence)
        self.result = result


@dataclass(eq=False)
class CheckResult:
    """Outcome of one check: ``ok`` (its truth value), the deciding ``frame``, ``region`` and ``score``.

    ``time`` is the frame's timestamp; ``details`` holds check-specific numbers for reports.
    """

    kind: str
    ok: bool
    frame: Frame | None
    region: Region | None
    score: float
    details: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.ok)

    @property
    def time(self) -> float | None:
        return None if self.frame is None else self.frame.time

    @property
    def symptom(self) -> str:
        """Short machine-friendly name of what a failure of this check means (for fault titles)."""
        return f"{self.kind}-not-seen" if not self.ok else self.kind

    def describe(self) -> str:
        """One line for logs and fault excerpts."""
        when = "no frame" if self.frame is None else f"t={self.frame.time:.3f}s seq={self.frame.seq}"
        where = f" in {self.region.x},{self.region.y} {self.region.width}x{self.region.height}" if self.region else ""
        extra = "".join(f" {k}={_fmt(v)}" for k, v in self.details.items() if not isinstance(v, list | dict))
        return f"{self.kind} {'yes' if self.ok else 'no'} score={self.score:.3f}{where} at {when}{extra}"

    def check(self, what: str | None = None, *, rig: str | None = None, symptom: str | None = None) -> CheckResult:
        """Return self when truthy; otherwise raise :class:`VideoCheckFailed` carrying this result."""
        if not self.ok:
            raise VideoCheckFailed(f"{what or self.kind} not seen: {self.describe()}", self, rig=rig, symptom=symptom)
        return self

    def annotate(self) -> np.ndarray:
        """A copy of the frame with the region outlined (green when truthy, red when not), captioned below."""
        canvas = np.zeros((120, 640, 3), np.uint8) if self.frame is None else self.frame.image.copy()
        colour = GREEN if self.ok else RED
        thick = max(2, canvas.shape[1] // 640)
        if self.region is not None and self.frame is not None:
            r = self.region.clip(canvas.shape[1], canvas.shape[0])
            if r is not None:
                cv2.rectangle(canvas, (r.x, r.y), (r.right - 1, r.bottom - 1), colour, thick)
        for region in self._extra_regions():
            r = region.clip(canvas.shape[1], canvas.shape[0])
            if r is not None:
                cv2.rectangle(canvas, (r.x, r.y), (r.right - 1, r.bottom - 1), YELLOW, max(1, thick // 2))
        return _caption(canvas, self.describe(), colour)

    def _extra_regions(self) -> list[Region]:
        return []

    def save_png(self, path: str | Path) -> Path:
        """Write :meth:`annotate` as a PNG; returns the path. Raises ``OSError`` when it cannot be written."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), self.annotate()):
            raise OSError(f"could not write {path}")
        return path

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no pixels)."""
        return {
            "kind": self.kind,
            "ok": bool(self.ok),
            "score": float(self.score),
            "time": self.time,
            "seq": None if self.frame is None else self.frame.seq,
            "region": None if self.region is None else self.region.to_dict(),
            "details": {k: v for k, v in self.details.items() if isinstance(v, int | float | str | bool | type(None))},
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _caption(canvas: np.ndarray, text: str, colour: tuple[int, int, int]) -> np.ndarray:
    """``canvas`` with a black band below it holding ``text``, wrapped to the width (at most 4 lines).

    Below, not over the picture, so the caption never hides what is being shown (a logo in a corner).
    """
    scale = max(0.4, canvas.shape[1] / 1600)
    font = cv2.FONT_HERSHEY_SIMPLEX
    lines: list[str] = []
    for word in text.split():
        if lines and cv2.getTextSize(f"{lines[-1]} {word}", font, scale, 1)[0][0] <= canvas.shape[1] - 12:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    lines = lines[:4]
    line_h = int(28 * scale) + 6
    band = np.zeros((line_h * len(lines) + 8, canvas.shape[1], 3), np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(band, line, (6, line_h * (i + 1)), font, scale, colour, 1, cv2.LINE_AA)
    return np.vstack([canvas, band])
