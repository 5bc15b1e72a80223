"""``labgrid://`` rig-source URLs: which places a job wants from which coordinator.

``labgrid://HOST:PORT/?model=STB-4K-X1&pool=ci&host=labhost-2&count=2&wait=30m``

* every key other than those below is a tag filter (``model``, ``pool``, ``host``, any tag
  the places carry); ``name=PLACE`` asks for one place by name;
* ``count`` how many places (default 1; must be 1 with ``name``);
* ``wait`` how long to wait for them: ``90s``, ``30m``, ``2h`` or seconds (default 10m; ``0`` = only
  what is free now);
* ``prio`` the reservation priority (default 0; a release gate passes a higher one);
* ``models`` the folder of per-model facts (default ``rigs/models``);
* ``user`` the lock holder's name (default ``ci-<job id>`` from the CI environment, else the login).

A malformed URL raises :class:`lab.errors.RigFileError` naming the URL, the key and the problem
(bad input, exit code 4).
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import ParseResult, parse_qsl, urlparse

from lab.errors import RigFileError

SCHEME = "labgrid"
DEFAULT_PORT = 20408
DEFAULT_WAIT = 600.0
# labgrid's tag rules (labgrid.remote.common.TAG_KEY), kept here so parsing needs no labgrid.
_TAG_KEY = re.compile(r"^[a-z][a-z0-9_]+$")
_TAG_VAL = re.compile(r"^[A-Za-z0-9_.:+-]+$")
_CONTROL = {"count", "wait", "prio", "models", "user"}
# CI systems and the variable that names the running job.
CI_JOB_VARIABLES = ("STBLAB_JOB_ID", "CI_JOB_ID", "GITHUB_RUN_ID", "BUILD_TAG", "BUILDKITE_JOB_ID")


def parse_duration(text: str, *, what: str = "wait") -> float:
    """Seconds in ``90s``, ``30m``, ``2h``, ``1h30m`` or a plain number of seconds."""
    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", t)
    if not t or not m or not any(m.groups()):
        raise ValueError(f"{what} '{text}' is not a duration (e.g. 90s, 30m, 2h)")
    h, mi, s = m.groups()
    return int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


def default_user(environ: dict[str, str] | None = None) -> str:
    """The lock holder's name: ``ci-<job id>`` in CI (GitLab, GitHub, Jenkins, Buildkite), else the login."""
    env = os.environ if environ is None else environ
    for var in CI_JOB_VARIABLES:
        value = env.get(var, "").strip()
        if value:
            job = re.sub(r"[^A-Za-z0-9_.-]", "-", value)
            if var == "GITHUB_RUN_ID" and env.get("GITHUB_RUN_ATTEMPT"):
                job += f".{env['GITHUB_RUN_ATTEMPT']}"
            return f"ci-{job}"
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def job_id_of(user: str) -> str | None:
    """The CI job id in a holder name (``host/ci-4711`` or ``ci-4711`` -> ``4711``), else None."""
    name = user.rsplit("/", 1)[-1]
    return name[3:] if name.startswith("ci-") and len(name) > 3 else None


@dataclass(frozen=True)
class PlaceRequest:
    """What a job asks the coordinator for (parsed from a ``labgrid://`` URL)."""

    coordinator: str
    filters: dict[str, str] = field(default_factory=dict)
    count: int = 1
    wait: float = DEFAULT_WAIT
    prio: float = 0.0
    models: Path = Path("rigs/models")
    user: str = ""
    url: str = ""

    @property
    def holder(self) -> str:
        return self.user or default_user()

    def matches(self, name: str, tags: dict[str, str]) -> bool:
        """True when a place with this name and these tags satisfies the filters."""
        return all((name if k == "name" else tags.get(k)) == v for k, v in self.filters.items())

    def describe(self) -> str:
        """``2 place(s) model=STB-4K-X1,pool=ci at 127.0.0.1:20408``."""
        f = ",".join(f"{k}={v}" for k, v in sorted(self.filters.items())) or "any"
        return f"{self.count} place(s) {f} at {self.coordinator}"

    def to_url(self) -> str:
        """The URL back (for plans and child jobs)."""
        q = [f"{k}={v}" for k, v in sorted(self.filters.items())]
        if self.count != 1:
            q.append(f"count={self.count}")
        q.append(f"wait={int(self.wait)}s")
        if self.prio:
            q.append(f"prio={self.prio:g}")
        if self.models != Path("rigs/models"):
            q.append(f"models={self.models}")
        return f"{SCHEME}://{self.coordinator}/?" + "&".join(q)


def is_labgrid_url(text: str | os.PathLike[str]) -> bool:
    """True for a ``labgrid://`` rig source (anything else is a rig file path)."""
    return str(text).startswith(f"{SCHEME}://")


def parse_request(url: str) -> PlaceRequest:
    """Parse and check a ``labgrid://`` URL; RigFileError names the URL, the key and the problem."""

    def bad(key: str, problem: str) -> RigFileError:
        return RigFileError(f"{url}: key '{key}': {problem}")

    p = urlparse(url)
    coordinator = _coordinator(p, bad)
    opts = _Options()
    seen: set[str] = set()
    for key, value in parse_qsl(p.query, keep_blank_values=True, strict_parsing=False):
        if key in seen:
            raise bad(key, "given twice")
        seen.add(key)
        if not value:
            raise bad(key, "empty value")
        opts.take(key, value, bad)
    if "name" in opts.filters and opts.count != 1:
        raise bad("count", "must be 1 when a place is named (name=...)")
    if not opts.filters:
        raise bad("query", "no filter: name a place (name=...) or tags (model=..., pool=..., host=...)")
    return PlaceRequest(coordinator, opts.filters, opts.count, opts.wait, opts.prio, opts.models, opts.user, url)


def _coordinator(p: ParseResult, bad: Callable[[str, str], RigFileError]) -> str:
    """``host:port`` of the coordinator a parsed ``labgrid://`` URL names (no path allowed)."""
    if p.scheme != SCHEME:
        raise bad("scheme", f"must be {SCHEME}://HOST:PORT/?model=...")
    if not p.hostname:
        raise bad("host", "missing coordinator host (labgrid://HOST:PORT/?...)")
    try:
        port = p.port or DEFAULT_PORT
    except ValueError as exc:
        raise bad("port", str(exc)) from exc
    host = f"[{p.hostname}]" if ":" in p.hostname else p.hostname
    if p.path not in ("", "/"):
        raise bad("path", f"unexpected '{p.path}' (filters go in the query: labgrid://HOST:PORT/?model=...)")
    return f"{host}:{port}"


@dataclass
class _Options:
    """The query of a ``labgrid://`` URL: the request's options, and every other key a tag filter."""

    count: int = 1
    wait: float = DEFAULT_WAIT
    prio: float = 0.0
    models: Path = field(default_factory=lambda: Path("rigs/models"))
    user: str = ""
    filters: dict[str, str] = field(default_factory=dict)

    def take(self, key: str, value: str, bad: Callable[[str, str], RigFileError]) -> None:
        """Check one ``key=value`` of the query and keep it."""
        if key == "count":
            if not value.isdigit() or int(value) < 1:
                raise bad(key, f"'{value}' is not a positive whole number")
            self.count = int(value)
        elif key == "wait":
            try:
                self.wait = parse_duration(value)
            except ValueError as exc:
                raise bad(key, str(exc)) from exc
        elif key == "prio":
            try:
                self.prio = float(value)
            except ValueError as exc:
                raise bad(key, f"'{value}' is not a number") from exc
        elif key == "models":
            self.models = Path(value)
        elif key == "user":
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
                raise bad(key, f"'{value}' may hold only letters, digits, '_', '.', '-'")
            self.user = value
        else:
            if not _TAG_KEY.match(key):
                raise bad(key, "not a tag name labgrid accepts (lowercase letter, then letters, digits, '_')")
            if not _TAG_VAL.match(value):
                raise bad(key, f"'{value}' is not a tag value labgrid accepts")
            self.filters[key] = value


__all__ = [
    "CI_JOB_VARIABLES",
    "PlaceRequest",
    "default_user",
    "is_labgrid_url",
    "job_id_of",
    "parse_duration",
    "parse_request",
]
