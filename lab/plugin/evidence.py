"""Evidence of a failed test: console excerpt, deciding frame, a clip of the last seconds, step log.

Written as files into the test's folder in the run directory (they survive the run and are what
the RMA filing references) and attached to the Allure result when Allure is active.

The deciding frame is taken from the fault itself when the scenario put it there
(``DeviceFault(..., evidence={"frame": result})`` where ``result`` is a lab.video result, a
``Frame`` or a numpy image), else the capture's latest frame. Nothing here starts an instrument
that the test did not use.

Example::

    ev = collect_evidence(stb, test_dir=run_dir / "stb-a" / "test_zap", error=exc,
                          console_mark=mark, steps=records)
    attach_to_allure(ev)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.steps import StepRecord

if TYPE_CHECKING:
    from lab.device import Stb
    from lab.protocols import Capture

MAX_EXCERPT_LINES = 300


@dataclass
class Evidence:
    """Files written for one failure, by kind (``console``, ``frame``, ``clip``, ``steps``, ...)."""

    dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def get(self, kind: str) -> Path | None:
        """The file written for ``kind``, or None when there is none."""
        return self.files.get(kind)


def slug(nodeid: str) -> str:
    """A file-system-safe folder name for a test node id."""
    name = nodeid.split("::", 1)[-1] if "::" in nodeid else nodeid
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:120] or "test"


def _save_image(obj: Any, path: Path) -> bool:
    """Write a frame-like object as PNG: a lab.video result, a Frame, or a BGR numpy array."""
    import cv2
    import numpy as np

    saver = getattr(obj, "save_png", None)
    if callable(saver):
        saver(str(path))
        return path.exists()
    image = getattr(obj, "image", None)
    if image is None and getattr(obj, "frame", None) is not None:
        image = getattr(obj.frame, "image", obj.frame)
    if image is None and isinstance(obj, np.ndarray):
        image = obj
    if image is None:
        return False
    return bool(cv2.imwrite(str(path), image))


def collect_evidence(
    stb: Stb | None,
    *,
    test_dir: Path,
    error: BaseException | None,
    console_mark: Any = None,
    steps: list[StepRecord] | None = None,
    clip_seconds: float = 5.0,
    profile: dict[str, Any] | None = None,
    pcap: Path | None = None,
) -> Evidence:
    """Write the failure's evidence files under ``test_dir``; problems are noted, never raised."""
    test_dir.mkdir(parents=True, exist_ok=True)
    ev = Evidence(test_dir)
    fault_evidence: dict[str, Any] = dict(getattr(error, "evidence", None) or {})
    if stb is not None:
        _console_excerpt(ev, stb, error, console_mark)
    capture = stb.capture_if_running if stb is not None else None
    _deciding_frame(ev, capture, error, fault_evidence)
    if capture is not None:
        _clip_and_counters(ev, capture, clip_seconds)
    if steps:  # the step log with timings
        path = test_dir / "steps.txt"
        ordered = sorted(steps, key=lambda r: (r.started, r.depth))
        path.write_text("\n".join(r.line() for r in ordered) + "\n", encoding="utf-8")
        ev.files["steps"] = path
    # The rig link's packet capture (lab.network's ``net`` fixture records it during the test).
    src = fault_evidence.get("pcap") or pcap
    if src and Path(str(src)).exists():
        ev.files["pcap"] = Path(str(src))
    if profile:
        path = test_dir / "network-profile.json"
        path.write_text(json.dumps(profile, indent=2, sort_keys=True, default=str), encoding="utf-8")
        ev.files["profile"] = path
    if ev.problems:
        (test_dir / "evidence-problems.txt").write_text("\n".join(ev.problems) + "\n", encoding="utf-8")
    return ev


def _console_excerpt(ev: Evidence, stb: Stb, error: BaseException | None, console_mark: Any) -> None:
    """What the box said during the test (from the open console only), plus the fault's own excerpt."""
    console = stb.console_if_open
    if console is None:
        return
    try:
        text: Any = console.since(console_mark) if console_mark is not None else console.tail(MAX_EXCERPT_LINES)
        if isinstance(text, list):
            text = "\n".join(text)
        lines = str(text).splitlines()[-MAX_EXCERPT_LINES:]
        header = f"# console of {stb.rig_name}, full log: {stb.console_log_path}\n"
        excerpt = getattr(error, "excerpt", None)
        if excerpt:
            header += "# fault excerpt:\n" + excerpt + "\n# console during the test (last lines):\n"
        path = ev.dir / "console-excerpt.txt"
        path.write_text(header + "\n".join(lines) + "\n", encoding="utf-8", errors="replace")
        ev.files["console"] = path
    except Exception as exc:  # noqa: BLE001 - evidence is best effort, the outcome stands
        ev.problems.append(f"console excerpt: {exc}")


def _deciding_frame(
    ev: Evidence, capture: Capture | None, error: BaseException | None, fault_evidence: dict[str, Any]
) -> None:
    """The deciding frame: from the fault, else the capture's latest frame."""
    frame_obj = fault_evidence.get("frame")
    if frame_obj is None and getattr(error, "result", None) is not None:
        frame_obj = error.result  # type: ignore[union-attr]  # lab.video's VideoCheckFailed keeps the deciding result
    if frame_obj is None and capture is not None:
        try:
            frame_obj = capture.latest()
        except Exception as exc:  # noqa: BLE001
            ev.problems.append(f"latest frame: {exc}")
    if frame_obj is None:
        return
    path = ev.dir / "frame.png"
    try:
        if _save_image(frame_obj, path):
            ev.files["frame"] = path
    except Exception as exc:  # noqa: BLE001
        ev.problems.append(f"frame: {exc}")


def _clip_and_counters(ev: Evidence, capture: Capture, clip_seconds: float) -> None:
    """A clip of the last seconds from the capture's ring, and its counters (drops are counted, never hidden)."""
    if hasattr(capture, "save_clip"):
        try:
            out = capture.save_clip(ev.dir / "clip.avi", seconds=clip_seconds)
            clip = Path(out) if isinstance(out, str | Path) else ev.dir / "clip.avi"
            if clip.exists() and clip.stat().st_size > 0:
                ev.files["clip"] = clip
        except Exception as exc:  # noqa: BLE001
            ev.problems.append(f"clip: {exc}")
    if hasattr(capture, "stats"):
        try:
            path = ev.dir / "capture-stats.json"
            path.write_text(json.dumps(capture.stats(), indent=2, default=str) + "\n", encoding="utf-8")
            ev.files["capture_stats"] = path
        except Exception as exc:  # noqa: BLE001
            ev.problems.append(f"capture stats: {exc}")


_ALLURE_TYPES = {
    "console": ("console log excerpt", "TEXT"),
    "frame": ("deciding frame", "PNG"),
    "clip": ("last seconds (clip)", None),
    "steps": ("step log with timings", "TEXT"),
    "pcap": ("packet capture", None),
    "profile": ("network profile", "JSON"),
    "capture_stats": ("capture counters (frames, dropped)", "JSON"),
}


def attach_to_allure(ev: Evidence) -> None:
    """Attach the evidence files to the current Allure test (no-op without ``--alluredir``)."""
    try:
        import allure
    except ImportError:  # pragma: no cover - allure-pytest is a dependency
        return
    for kind, path in ev.files.items():
        if kind == "pcap":
            continue  # lab.network's ``net`` fixture attaches the pcap itself when it keeps it
        name, type_name = _ALLURE_TYPES.get(kind, (kind, None))
        attachment_type = getattr(allure.attachment_type, type_name) if type_name else None
        extension = None if attachment_type else path.suffix.lstrip(".")
        allure.attach.file(str(path), name=name, attachment_type=attachment_type, extension=extension)


__all__ = ["Evidence", "attach_to_allure", "collect_evidence", "slug"]
