"""``labgrid-exporter`` configuration from a rig file: one resource group per rig.

labgrid reads an exporter file as a Jinja2 template, so comments are written ``##`` (a ``{#``
or ``{{`` in a value would be a template too: such values are refused).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from lab.errors import RigFileError
from lab.labgrid.resources import groups_for_rig
from lab.rig import Rig


def exporter_config(rigs: list[Rig], *, source: str = "") -> str:
    """The exporter YAML for ``rigs`` (groups named after the rigs)."""
    groups = {}
    for rig in rigs:
        group = groups_for_rig(rig)
        if not group:
            raise RigFileError(f"{rig.source or source}: rig '{rig.name}': no instrument labgrid can export")
        groups[rig.name] = group
    body = yaml.safe_dump(groups, sort_keys=False)
    for marker in ("{{", "{%", "{#"):
        if marker in body:
            raise RigFileError(f"{source}: a value holds '{marker}', which labgrid's Jinja2 templating would expand")
    head = [
        "## labgrid-exporter resources, written by `stblab labgrid exporter-config` from " + (source or "a rig file"),
        "## (a Jinja2 template: comments start with '##'). Run: labgrid-exporter -c COORDINATOR -n HOST THIS_FILE",
    ]
    return "\n".join(head) + "\n" + body


def write_exporter_config(rigs: list[Rig], out: Path, *, source: str = "") -> Path:
    """Write :func:`exporter_config` to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(exporter_config(rigs, source=source), encoding="utf-8")
    return out


__all__ = ["exporter_config", "write_exporter_config"]
