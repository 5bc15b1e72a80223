"""Impairment profiles: what the network does to a rig's traffic, as a validated, recordable value.

A profile is a YAML file in ``rigs/profiles/`` (or anywhere, by path). Units are written out so a
lab engineer reads them as they would read a ``tc netem`` line::

    # rigs/profiles/lossy-2pct.yaml
    description: 2 % random loss on the access line
    delay: 20ms
    jitter: 5ms
    loss: 2%
    seed: 7

Fields: ``delay``/``jitter`` (ms, or "50ms"/"0.2s"), ``loss`` (random %), ``burst`` (Gilbert-Elliott
``{p, r, h, k}`` in % as netem's ``gemodel``: p good->bad, r bad->good, h/k = chance a packet
*survives* in the bad/good state), ``duplicate``, ``reorder`` (% sent ahead of the delayed rest),
``corrupt`` (% with one bit flipped), ``rate`` ("20mbit", "512kbit"; a number is kbit/s) with
``queue`` (packets held before tail drop), ``outages`` (``[{start: 2s, duration: 5s}]`` from the
moment the profile is applied), ``direction`` (both | downstream (towards the box) | upstream) and
``seed`` (the RNG seed: same seed, same losses).

Example::

    from lab.network.profile import load_profile
    p = load_profile("lossy-2pct")
    p.loss            # 2.0
    p.as_record()     # {'name': 'lossy-2pct', 'loss': 2.0, ...} -- stored with every result

Bad files raise :class:`ProfileError` naming the file, the key and the problem.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from lab.errors import TestError


class ProfileError(TestError, ValueError):
    """A profile is malformed or unknown (the scenario asked for something impossible)."""


_TIME = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(us|ms|s)?\s*$")
_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)?\s*$", re.IGNORECASE)
_RATE_KBIT = {None: 1.0, "bit": 1e-3, "kbit": 1.0, "mbit": 1e3, "gbit": 1e6, "bps": 8e-3, "kbps": 8.0, "mbps": 8e3}
_RATE_KBIT["gbps"] = 8e6


def _ms(value: Any) -> Any:
    """``50`` -> 50.0 ms; ``"50ms"`` -> 50.0; ``"0.2s"`` -> 200.0; ``"500us"`` -> 0.5."""
    if isinstance(value, str):
        m = _TIME.match(value)
        if not m:
            raise ValueError(f"not a duration: {value!r} (write e.g. 50ms, 0.2s or a number of ms)")
        scale = {"us": 1e-3, "ms": 1.0, "s": 1e3, None: 1.0}[m.group(2)]
        return float(m.group(1)) * scale
    return value


def _seconds(value: Any) -> Any:
    """Outage times: a number is seconds; ``"500ms"`` -> 0.5."""
    if isinstance(value, str):
        m = _TIME.match(value)
        if not m:
            raise ValueError(f"not a duration: {value!r} (write e.g. 5s, 500ms or a number of seconds)")
        return float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, None: 1.0}[m.group(2)]
    return value


def _pct(value: Any) -> Any:
    """``2`` -> 2.0 %; ``"2%"`` -> 2.0."""
    if isinstance(value, str):
        text = value.strip().removesuffix("%").strip()
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"not a percentage: {value!r} (write e.g. 2% or 2)") from None
    return value


def _kbit(value: Any) -> Any:
    """``"20mbit"`` -> 20000.0 kbit/s; a bare number is kbit/s."""
    if isinstance(value, str):
        m = _RATE.match(value)
        if not m:
            raise ValueError(f"not a rate: {value!r} (write e.g. 20mbit, 512kbit)")
        unit = m.group(2).lower() if m.group(2) else None
        return float(m.group(1)) * _RATE_KBIT[unit]
    return value


Millis = Annotated[float, BeforeValidator(_ms), Field(ge=0, le=60_000)]
Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0, le=86_400)]
Percent = Annotated[float, BeforeValidator(_pct), Field(ge=0, le=100)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GilbertElliott(_Model):
    """Burst loss (netem ``gemodel``): two states, good and bad, in percent.

    ``p``: chance to go good -> bad per packet; ``r``: bad -> good; ``h``: chance a packet survives
    in the bad state (0 = every packet lost while bad); ``k``: survives in the good state (100).
    Mean burst length is ``100 / r`` packets.
    """

    p: Percent
    r: Percent = Field(default=None, validate_default=False)  # type: ignore[assignment]
    h: Percent = 0.0
    k: Percent = 100.0

    @model_validator(mode="after")
    def _r_default(self) -> GilbertElliott:
        if self.r is None:
            object.__setattr__(self, "r", 100.0 - self.p)
        if self.r <= 0:
            raise ValueError("r must be > 0 (a bad state that never ends is an outage: use outages)")
        return self


class Outage(_Model):
    """The link is down (every packet lost) from ``start`` for ``duration`` seconds after apply()."""

    start: Seconds
    duration: Annotated[float, BeforeValidator(_seconds), Field(gt=0, le=86_400)]


class Profile(_Model):
    """One impairment profile. ``Profile()`` is the clean link."""

    name: str = "clean"
    description: str = ""
    delay: Millis = 0.0
    jitter: Millis = 0.0
    loss: Percent = 0.0
    burst: GilbertElliott | None = None
    duplicate: Percent = 0.0
    reorder: Percent = 0.0
    corrupt: Percent = 0.0
    rate: Annotated[float, BeforeValidator(_kbit), Field(gt=0, le=100_000_000)] | None = None
    queue: int = Field(1000, gt=0, le=1_000_000)
    outages: list[Outage] = []
    direction: Literal["both", "downstream", "upstream"] = "both"
    seed: int = 0

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        if self.jitter > 0 and self.jitter > self.delay:
            raise ValueError(
                f"jitter ({self.jitter:g} ms) larger than delay ({self.delay:g} ms) would send packets "
                "before they arrive: raise delay or lower jitter"
            )
        if self.reorder > 0 and self.delay <= 0:
            raise ValueError("reorder needs a delay (reordered packets skip the delay, as with netem)")
        return self

    @property
    def is_clean(self) -> bool:
        """True when the profile changes nothing (the shaper may take its fast path)."""
        same: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "seed": self.seed,
            "queue": self.queue,
        }
        return self == Profile(**same, direction=self.direction)

    def as_record(self) -> dict[str, Any]:
        """The profile as a plain dict, recorded next to every result (JUnit property, RMA fault)."""
        data = self.model_dump(mode="json", exclude_none=True)
        if not self.outages:
            data.pop("outages")
        return data

    def with_seed(self, seed: int) -> Profile:
        """The same profile with another RNG seed (reruns of a reproduction keep the seed)."""
        return self.model_copy(update={"seed": seed})


def profiles_dirs() -> list[Path]:
    """Where profile names are looked up: ``$STBLAB_PROFILES`` (os.pathsep list), ./rigs/profiles,
    and the repository's rigs/profiles."""
    dirs: list[Path] = []
    env = os.environ.get("STBLAB_PROFILES")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs.append(Path.cwd() / "rigs" / "profiles")
    dirs.append(Path(__file__).resolve().parents[2] / "rigs" / "profiles")
    seen: list[Path] = []
    for d in dirs:
        if d.resolve() not in [s.resolve() for s in seen]:
            seen.append(d)
    return seen


def list_profiles() -> dict[str, Path]:
    """Known profile names -> file, first directory wins."""
    found: dict[str, Path] = {}
    for d in profiles_dirs():
        if d.is_dir():
            for f in sorted(d.glob("*.yaml")):
                found.setdefault(f.stem, f)
    return found


def parse_profile(data: Any, *, name: str, source: str = "<profile>") -> Profile:
    """Validate a mapping as a profile; errors name the source, key and problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: a profile is a mapping of settings, got {type(data).__name__}")
    data = dict(data)
    data.setdefault("name", name)
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(profile)"
        msg = err["msg"].removeprefix("Value error, ")
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ProfileError(f"{source}: key '{key}': {msg}{more}") from exc


def load_profile(name_or_path: str | os.PathLike[str] | Profile) -> Profile:
    """A profile by name (``lossy-2pct`` in rigs/profiles/) or by path to a YAML file."""
    if isinstance(name_or_path, Profile):
        return name_or_path
    text = str(name_or_path)
    path = Path(text)
    if not (path.suffix in {".yaml", ".yml"} or os.sep in text):
        if text == "clean":
            known = list_profiles()
            if "clean" not in known:
                return Profile()
        known = list_profiles()
        if text not in known:
            raise ProfileError(f"unknown network profile '{text}' (have: {', '.join(known) or 'none'})")
        path = known[text]
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from exc
    except ValueError as exc:  # bytes that are not UTF-8, a date like 2026-13-45
        raise ProfileError(f"{path}: not a readable profile: {type(exc).__name__}: {str(exc)[:200]}") from None
    return parse_profile(raw, name=path.stem, source=str(path))


def profile_params(*names: str) -> list[Any]:
    """Profiles as pytest parameters with readable ids.

    Example::

        @pytest.mark.parametrize("profile", profile_params("clean", "lossy-2pct"))
        def test_zap(profile, net): net.shaper.apply(profile)
    """
    import pytest

    chosen = names or tuple(list_profiles())
    return [pytest.param(load_profile(n), id=str(n)) for n in chosen]


__all__ = [
    "GilbertElliott",
    "Outage",
    "Profile",
    "ProfileError",
    "list_profiles",
    "load_profile",
    "parse_profile",
    "profile_params",
    "profiles_dirs",
]
