"""Loading box profiles: ``rigs/models/<model>.yaml``, ``extends:`` chains, errors naming file and key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lab.errors import RigFileError
from lab.profile.model import BoxProfile

#: the profiles shipped with stblab (the repository's rigs/models)
SHIPPED = Path(__file__).resolve().parents[2] / "rigs" / "models"


class ProfileError(RigFileError):
    """A box profile is missing or malformed; the message names the file, the key and the problem."""


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read box profile: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ProfileError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from exc
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a box profile is a mapping (model:, console:, identify: ...)")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: mappings merged key by key, anything else replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _raw(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in seen:
        chain = " -> ".join(str(p.name) for p in (*seen, path))
        raise ProfileError(f"{path}: key 'extends': profiles extend each other in a loop ({chain})")
    data = _read(path)
    parent = data.get("extends")
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent:
        raise ProfileError(f"{path}: key 'extends': must name a profile (its file name without .yaml)")
    base_path = _find_file(parent, [path.parent, SHIPPED])
    if base_path is None:
        raise ProfileError(f"{path}: key 'extends': no profile {parent!r} in {path.parent} or {SHIPPED}")
    merged = _merge(_raw(base_path, (*seen, path)), data)
    merged.pop("extends", None)
    return merged


def _key_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def load_profile(path: str | os.PathLike[str]) -> BoxProfile:
    """Load and validate one profile file (following ``extends:``). Raises :class:`ProfileError`."""
    path = Path(path).resolve()
    data = _raw(path)
    if isinstance(data.get("ir_remote"), str) and not Path(data["ir_remote"]).is_absolute():
        data["ir_remote"] = str(path.parent / data["ir_remote"])
    try:
        return BoxProfile.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _key_path(err["loc"]) or "(profile)"
        msg = err["msg"].removeprefix("Value error, ")
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ProfileError(f"{path}: key '{key}': {msg}{more}") from exc


def _find_file(model: str, folders: list[Path]) -> Path | None:
    for folder in folders:
        for name in (f"{model}.yaml", f"{model}.yml"):
            candidate = folder / name
            if candidate.is_file():
                return candidate.resolve()
    return None


def find_profile(model: str, folders: list[Path] | None = None) -> BoxProfile:
    """The profile of ``model``: ``<folder>/<model>.yaml`` in ``folders``, then the shipped ones."""
    search = [*(folders or []), SHIPPED]
    path = _find_file(model, search)
    if path is None:
        where = ", ".join(str(f) for f in search)
        raise ProfileError(
            f"no box profile for model {model!r} (looked for {model}.yaml in {where}); write one, "
            "e.g. 'extends: generic-linux' plus what differs"
        )
    return load_profile(path)


def profile_for_rig(rig: Any) -> BoxProfile:
    """The profile of a rig's ``model``: ``models/`` next to its rig file first, then the shipped ones."""
    folders: list[Path] = []
    source = getattr(rig, "source", None)
    if source is not None:
        folders.append(Path(source).resolve().parent / "models")
    try:
        return find_profile(rig.model, folders)
    except ProfileError as exc:
        raise ProfileError(f"rig {rig.name!r}: {exc}") from exc
