"""Screen: the base of page objects, in the spirit of stb-tester's ``FrameObject``.

A page object describes one screen of a box's UI (live TV with its banner, the main menu, the
EPG): it is built from *one frame*, and its properties are computed from that frame (is the
banner there? which channel does it show?), so a test reads ``LiveTv(frame).channel`` rather
than pixel coordinates. Where things are on screen, and the reference images to look for, come
from a model's asset folder (``<folder>/regions.json`` plus PNGs), not from code:

``regions.json`` maps names to ``[x0, y0, x1, y1]`` extents in frame pixels; any other key
(a channel list, a size) is kept as ``assets.data[key]``. A missing folder, a malformed file or
a bad extent raises :class:`~lab.errors.TestError` naming the file and the key.

Waiting for a screen runs the library's one waiting engine (frame time, VideoCheckFailed with the
deciding frame when it does not appear): ``LiveTv.wait(capture, assets=..., timeout_secs=3)``.

Example::

    class LiveTv(Screen):
        @property
        def is_visible(self) -> bool:
            return bool(self.banner)

        @property
        def banner(self) -> MatchResult:
            return self.match_image("banner-5.png", "banner")

    assets = ScreenAssets.load("scenarios/images/STB-4K-X1")
    tv = LiveTv.wait(capture, assets=assets, timeout_secs=3)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lab.errors import TestError
from lab.video.engine import wait
from lab.video.frame import Frame, as_frame
from lab.video.match import MatchResult, match
from lab.video.region import Region
from lab.video.result import CheckResult

S = TypeVar("S", bound="Screen")


@dataclass(frozen=True)
class ScreenAssets:
    """A model's reference images and named regions (see the module docstring)."""

    folder: Path
    regions: dict[str, Region] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: str | Path) -> ScreenAssets:
        """Read ``folder/regions.json``; TestError naming the file and key when it is wrong."""
        folder = Path(folder)
        path = folder / "regions.json"
        if not path.is_file():
            raise TestError(f"no screen assets: {path} does not exist")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TestError(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise TestError(f"{path}: expected an object of named regions, got {type(raw).__name__}")
        regions: dict[str, Region] = {}
        data: dict[str, Any] = {}
        for key, value in raw.items():
            if key == "size" or not (isinstance(value, list) and len(value) == 4):
                data[key] = value
                continue
            if not all(isinstance(v, int) for v in value):
                raise TestError(f"{path}: region {key!r} must be four integers [x0, y0, x1, y1], got {value!r}")
            x0, y0, x1, y1 = value
            if x1 <= x0 or y1 <= y0 or x0 < 0 or y0 < 0:
                raise TestError(f"{path}: region {key!r} is empty or negative: {value!r}")
            regions[key] = Region(x0, y0, x1 - x0, y1 - y0)
        return cls(folder, regions, data)

    def region(self, name: str) -> Region:
        """The named region; TestError when regions.json has no such name."""
        try:
            return self.regions[name]
        except KeyError:
            raise TestError(
                f"{self.folder / 'regions.json'}: no region {name!r} (has {', '.join(sorted(self.regions))})"
            ) from None

    def image(self, name: str) -> Path:
        """The path of reference image ``name`` in the folder; TestError when it is missing."""
        path = self.folder / name
        if not path.is_file():
            raise TestError(f"no reference image {name} in {self.folder}")
        return path


class Screen:
    """A page object: what one frame shows of a UI screen (subclass it; see the module docstring).

    Subclasses define :attr:`is_visible` and properties computed from :attr:`frame`; a Screen is
    truthy when it is visible. Properties can use :meth:`match_image` and :meth:`region`.
    """

    def __init__(self, frame: Frame | Any, *, assets: ScreenAssets | None = None) -> None:
        self.frame: Frame = as_frame(frame)
        self.assets = assets

    @property
    def is_visible(self) -> bool:
        """Is this screen what the frame shows? Subclasses must say."""
        raise NotImplementedError(f"{type(self).__name__} must define is_visible")

    def __bool__(self) -> bool:
        return bool(self.is_visible)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} visible={bool(self)} {self.frame!r}>"

    def region(self, name: str) -> Region:
        """A named region of this model's assets."""
        if self.assets is None:
            raise TestError(f"{type(self).__name__} has no assets: pass assets=ScreenAssets.load(folder)")
        return self.assets.region(name)

    def match_image(self, image: str, region: str | Region | None = None) -> MatchResult:
        """Match reference image ``image`` (a file in the assets folder) in ``region`` (a name or a Region)."""
        if self.assets is None:
            raise TestError(f"{type(self).__name__} has no assets: pass assets=ScreenAssets.load(folder)")
        where = self.region(region) if isinstance(region, str) else (region or Region.ALL)
        return _match_cached(self, str(self.assets.image(image)), where)

    def result(self) -> CheckResult:
        """This screen's visibility as a check result (its frame is the evidence)."""
        ok = bool(self.is_visible)
        out = CheckResult(type(self).__name__, ok, self.frame, None, float(ok))
        return out

    @classmethod
    def wait(
        cls: type[S],
        source: Any,
        *,
        assets: ScreenAssets | None = None,
        timeout_secs: float = 10.0,
        stable_secs: float = 0.0,
        since: float | None = None,
        rig: str | None = None,
        check: bool = True,
        symptom: str | None = None,
    ) -> S:
        """Wait, on the library's engine, until this screen is visible; the screen of the deciding frame.

        Not visible in time: VideoCheckFailed (symptom ``<screen>-not-seen`` unless given) with the
        last frame as evidence; with ``check=False`` the (falsy) screen of that frame.
        """
        screens: dict[int, S] = {}

        def step(frame: Frame) -> CheckResult:
            screen = cls(frame, assets=assets)
            screens[id(frame)] = screen
            return screen.result()

        name = cls.__name__
        result = wait(
            step,
            source,
            timeout_secs=timeout_secs,
            stable_secs=stable_secs,
            since=since,
            rig=rig,
            check=check,
            what=f"screen {name}",
            symptom=symptom or f"{name.lower()}-not-seen",
        )
        if result.frame is None:
            raise TestError(f"screen {name}: the source gave no frame")
        return screens.get(id(result.frame)) or cls(result.frame, assets=assets)


def _match_cached(screen: Screen, path: str, region: Region) -> MatchResult:
    """One match per (image, region) per screen: properties may ask twice."""
    cache = screen.__dict__.setdefault("_matches", {})
    key = (path, region)
    if key not in cache:
        cache[key] = match(path, screen.frame, region=region)  # as_template caches the file
    return cache[key]
