"""Free places held by jobs that no longer run, and cancel their reservations.

A job's parent process releases its places on every exit it can see (normal, exception,
SIGTERM, SIGINT, interpreter exit); a SIGKILLed or vanished job cannot. The janitor finds those:

* with ``live_jobs`` (the CI's list of running job ids): a holder ``ci-<id>`` whose id is not live;
* with ``older_than`` seconds: a holder whose lock has not changed for that long (``ci-`` holders
  only, unless ``all_users``: an engineer's hand lock is theirs to give back).

It releases with ``fromuser`` (so a place taken over in the meantime is left alone) and cancels the
stale holders' reservations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from lab.labgrid.request import job_id_of


@dataclass(frozen=True)
class Stale:
    """A place (or a reservation, ``place`` None) the janitor frees, and why."""

    holder: str
    why: str
    place: str | None = None
    token: str | None = None


def _stale_reason(
    holder: str, *, live_jobs: set[str] | None, older_than: float | None, age: float | None, all_users: bool
) -> str | None:
    job = job_id_of(holder)
    if live_jobs is not None and job is not None and job not in live_jobs:
        return f"job {job} is not running"
    if older_than is not None and age is not None and age >= older_than and (job is not None or all_users):
        return f"held for {age:.0f} s (limit {older_than:.0f} s)"
    return None


def find_stale(
    link: Any, *, live_jobs: set[str] | None = None, older_than: float | None = None, all_users: bool = False
) -> list[Stale]:
    """Places and reservations held by jobs that no longer run (see module doc)."""
    now = time.time()
    out: list[Stale] = []
    for place in link.places().values():
        if not place.acquired:
            continue
        why = _stale_reason(
            place.acquired, live_jobs=live_jobs, older_than=older_than, age=now - place.changed, all_users=all_users
        )
        if why:
            out.append(Stale(place.acquired, why, place=place.name))
    for res in link.reservations():
        why = _stale_reason(
            res.owner, live_jobs=live_jobs, older_than=older_than, age=now - res.created, all_users=all_users
        )
        if why:
            out.append(Stale(res.owner, why, token=res.token))
    return out


def clean(
    link: Any,
    *,
    live_jobs: set[str] | None = None,
    older_than: float | None = None,
    all_users: bool = False,
    dry_run: bool = False,
) -> list[Stale]:
    """Release the stale places and cancel the stale reservations; returns what was (or would be) freed."""
    from lab.labgrid.coordinator import PlaceRefused

    if live_jobs is None and older_than is None:
        raise ValueError("the janitor needs the live job ids or an age limit")
    stale = find_stale(link, live_jobs=live_jobs, older_than=older_than, all_users=all_users)
    if not dry_run:
        # reservations before places: a place released while its reservation exists stays
        # unavailable to the next waiter until the coordinator's 15 s housekeeping
        for s in sorted(stale, key=lambda s: s.place is not None):
            try:
                if s.place:
                    link.release(s.place, fromuser=s.holder)
                elif s.token:
                    link.cancel_reservation(s.token)
            except PlaceRefused:
                pass  # gone meanwhile
    return stale


__all__ = ["Stale", "clean", "find_stale"]
