"""Per-model facts: what completes a labgrid place into a stblab rig.

A place knows addresses (its exported resources) and tags (``model=``, ``pool=``, ``host=``).
Everything else about driving the box is the same for every box of a model and stays in the
repository, in ``rigs/models/<model>.yaml`` under a ``rig:`` key (other keys of that file, such
as the box profile, are read by others)::

    rig:
      features: [hdmi, ir, ssh]
      serial: {login: {user: root, password_env: STB_PW}, prompt: '[#$] $'}
      ssh: {user: root, key: ../../.stblab/keys/lab_ed25519, known_hosts: ../../.stblab/known_hosts}
      ir: {remote: ../remotes/stblab-rc1.lircd.conf}
      video: {width: 1280, height: 720, fps: 25}
      firmware: {trusted_keys: [../../.stblab/keys/vendor_ed25519.pub]}

Relative paths resolve against the model file's folder. Addresses (``url``, ``host``, ``port``,
``outlet``) are refused: they come from the place. Secrets stay references (``*_env``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lab.errors import RigFileError
from lab.rig import Rig

_ADDRESS_KEYS = {
    "serial": {"url"},
    "ssh": {"host", "port"},
    "ir": {"url"},
    "video": {"url"},
    "power": {"url", "outlet"},
}
_FACT_KEYS = {"features", "serial", "ssh", "ir", "video", "power", "firmware"}
_PATHS = {("ssh", "key"), ("ssh", "known_hosts"), ("ir", "remote")}


def model_file(models: Path, model: str) -> Path:
    """Where the facts of ``model`` live."""
    return models / f"{model}.yaml"


def load_facts(models: Path, model: str) -> dict[str, Any]:
    """The ``rig:`` facts of a model, paths made absolute; RigFileError names the file and key."""
    path = model_file(models, model)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RigFileError(
            f"{path}: no facts for model '{model}' (write them with `stblab labgrid model-facts RIGFILE`)"
        ) from exc
    except (OSError, yaml.YAMLError) as exc:
        raise RigFileError(f"{path}: cannot read model facts: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("rig"), dict):
        raise RigFileError(f"{path}: key 'rig': missing (a mapping of the model's rig facts)")
    facts = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data["rig"].items()}
    for key, value in facts.items():
        if key not in _FACT_KEYS:
            raise RigFileError(f"{path}: key 'rig.{key}': not a model fact (one of {', '.join(sorted(_FACT_KEYS))})")
        if key in _ADDRESS_KEYS and isinstance(value, dict):
            for addr in _ADDRESS_KEYS[key] & set(value):
                raise RigFileError(f"{path}: key 'rig.{key}.{addr}': an address; it comes from the labgrid place")
    base = path.resolve().parent
    for section, key in _PATHS:
        sec = facts.get(section)
        if isinstance(sec, dict) and isinstance(sec.get(key), str):
            sec[key] = os.path.normpath(base / os.path.expanduser(sec[key]))
    fw = facts.get("firmware")
    if isinstance(fw, dict) and isinstance(fw.get("trusted_keys"), list):
        fw["trusted_keys"] = [os.path.normpath(base / os.path.expanduser(str(k))) for k in fw["trusted_keys"]]
    return facts


def complete_rig(
    name: str, model: str, sections: dict[str, dict[str, Any]], facts: dict[str, Any], *, origin: str
) -> dict[str, Any]:
    """A rig mapping from a place's address sections and its model's facts, checked with the rig model.

    ``origin`` names the place and coordinator in errors.
    """
    rig: dict[str, Any] = {"name": name, "model": model, "features": list(facts.get("features", []))}
    for section, addr in sections.items():
        rig[section] = {**(facts.get(section) or {}), **addr}
    if facts.get("firmware"):
        rig["firmware"] = facts["firmware"]
    try:
        Rig.model_validate(rig)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(rig)"
        msg = err["msg"].removeprefix("Value error, ")
        raise RigFileError(
            f"{origin}: rig '{name}': key '{key}': {msg} (place resources + model '{model}' facts)"
        ) from exc
    return rig


def facts_from_rig(rig: Rig, target: Path) -> dict[str, Any]:
    """The model facts one rig implies (addresses and emulation dropped), paths relative to ``target``."""
    data = rig.model_dump(mode="json", exclude_none=True, exclude={"name", "model", "source", "emulate", "network"})
    for section, keys in _ADDRESS_KEYS.items():
        if section in data:
            for k in keys:
                data[section].pop(k, None)
    base = target.resolve().parent

    def rel(p: str) -> str:
        return os.path.relpath(p, base)

    for section, key in _PATHS:
        if key in data.get(section, {}):
            data[section][key] = rel(data[section][key])
    if "firmware" in data:
        data["firmware"]["trusted_keys"] = [rel(k) for k in data["firmware"].get("trusted_keys", [])]
    return {k: v for k, v in data.items() if v not in ({}, [], None)}


def write_model_facts(rigs: list[Rig], models: Path) -> list[Path]:
    """Write ``<models>/<model>.yaml`` (a ``rig:`` section) for each model in ``rigs`` (first rig wins).

    An existing file keeps its other keys (the box profile); only ``rig:`` is replaced.
    """
    models.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for rig in rigs:
        path = model_file(models, rig.model)
        if path in written:
            continue
        old: dict[str, Any] = {}
        if path.exists():
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
            old = loaded if isinstance(loaded, dict) else {}
        old["rig"] = facts_from_rig(rig, path)
        path.write_text(yaml.safe_dump(old, sort_keys=False), encoding="utf-8")
        written.append(path)
    return written


__all__ = ["complete_rig", "facts_from_rig", "load_facts", "model_file", "write_model_facts"]
