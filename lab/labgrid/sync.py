"""Places from a rig file: create or update one place per rig, matched to its exporter's group.

Each place is named after its rig, matches ``<host>/<rig>/*`` (the resource group that host's
exporter publishes for it) and carries the tags ``model=``, ``pool=`` and ``host=`` that
``labgrid://`` filters and the gate plan use. Running it again changes only what differs; a place
someone holds keeps its lock (labgrid refuses match changes on a held place, so those wait).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lab.rig import Rig


@dataclass
class SyncReport:
    """What ``sync`` did per place: created, updated (what), unchanged or skipped (why)."""

    created: list[str] = field(default_factory=list)
    updated: dict[str, list[str]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"created {n}" for n in self.created]
        out += [f"updated {n}: {', '.join(w)}" for n, w in self.updated.items()]
        out += [f"unchanged {n}" for n in self.unchanged]
        out += [f"skipped {n}: {why}" for n, why in self.skipped.items()]
        return out


def tags_for(rig: Rig, *, host: str, pool: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The tags a rig's place carries."""
    tags = {"model": rig.model, "host": host, **(extra or {})}
    if pool:
        tags["pool"] = pool
    return tags


def sync_places(
    link: Any, rigs: list[Rig], *, host: str, pool: str | None = None, extra_tags: dict[str, str] | None = None
) -> SyncReport:
    """Create or update one place per rig at the coordinator behind ``link``."""
    from lab.labgrid.coordinator import PlaceRefused, match_pattern

    report = SyncReport()
    places = link.places()
    for rig in rigs:
        want_tags = tags_for(rig, host=host, pool=pool, extra=extra_tags)
        want_match = [match_pattern(host, rig.name)]
        place = places.get(rig.name)
        changes: list[str] = []
        if place is None:
            link.add_place(rig.name)
            report.created.append(rig.name)
        if place is None or place.tags != want_tags:
            link.set_tags(rig.name, want_tags)
            changes.append("tags")
        if place is None or sorted(place.matches) != want_match:
            if place is not None and place.acquired:
                report.skipped[rig.name] = f"held by {place.acquired}: matches left as they are"
                continue
            try:
                link.set_matches(rig.name, want_match)
            except PlaceRefused as exc:
                report.skipped[rig.name] = exc.message
                continue
            changes.append("matches")
        if place is not None:
            if changes:
                report.updated[rig.name] = changes
            else:
                report.unchanged.append(rig.name)
    return report


__all__ = ["SyncReport", "sync_places", "tags_for"]
