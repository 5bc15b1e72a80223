"""``--rigs`` for the job commands: a rig file, or a ``labgrid://`` URL held for the whole command.

``stblab lab``, ``stblab firmware gate`` and ``stblab warranty check`` read their rigs (to flash, to
collect evidence, to pick the firmware) before and between the jobs they run, so the places must be
held by the long-lived command process, not by one :func:`~lab.jobs.run_job`. Each command wraps
its body in :func:`held_rigs`::

    with held_rigs(rigs_arg, run_dir) as held:
        rigs = load_rigs(held.rig_file)
        ...  # jobs run on held.rig_file; their pytest processes check the locks before each test
        held.check()  # InfraError naming the place when a lock was lost meanwhile

A path is passed through untouched (no labgrid import). A ``labgrid://`` URL is held by
:func:`lab.labgrid.source.rig_file_for`: a malformed URL or a request no place can match raises
:class:`~lab.errors.RigFileError` (bad input, exit 4); places that cannot be had (busy past ``wait``,
coordinator unreachable) raise :class:`~lab.errors.InfraError` naming the coordinator and place (exit 2).
While held, ``STBLAB_LABGRID_STATUS`` names the lock status file, so the per-rig pytest processes
(:mod:`lab.plugin.outcomes`) find it even when the command derives a rig file of its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.errors import InfraError, RigFileError
from lab.labgrid.source import STATUS_ENV

SCHEME = "labgrid://"


def is_url(source: str | os.PathLike[str]) -> bool:
    """True when ``--rigs`` names a labgrid coordinator rather than a file."""
    return str(source).startswith(SCHEME)


@dataclass
class HeldRigs:
    """The rig file a command runs on and, for a labgrid URL, the places held for it."""

    rig_file: Path
    source: str
    places: Any = field(default=None, repr=False)  # lab.labgrid.source.HeldPlaces, or None for a file

    def lost(self) -> dict[str, str]:
        """Rig name -> why its place was lost (always empty for a plain rig file)."""
        return dict(self.places.lost) if self.places is not None else {}

    def check(self) -> None:
        """Raise InfraError naming the rig and why, when any held place was lost."""
        for rig, why in sorted(self.lost().items()):
            raise InfraError(why, rig=rig, instrument="labgrid")


@contextlib.contextmanager
def held_rigs(source: str | os.PathLike[str], run_dir: Path) -> Iterator[HeldRigs]:
    """Yield the rig file for ``--rigs`` (see module doc); for a labgrid URL the places are held,
    and released on every way out of the block."""
    if not is_url(source):
        yield HeldRigs(Path(source), str(source))
        return
    try:
        from lab.labgrid.request import parse_request
        from lab.labgrid.source import held_rig_file, status_path
    except ImportError as exc:  # the extra is not installed
        raise RigFileError(f"--rigs {source}: labgrid:// needs stblab[labgrid] ({exc})") from exc
    request = parse_request(str(source))  # bad input before anything is created or contacted
    run_dir.mkdir(parents=True, exist_ok=True)
    with held_rig_file(request, run_dir / "labgrid-rigs.yaml") as places:
        old = os.environ.get(STATUS_ENV)
        os.environ[STATUS_ENV] = str(status_path(places.rig_file))
        try:
            yield HeldRigs(places.rig_file, str(source), places)
        finally:
            if old is None:
                os.environ.pop(STATUS_ENV, None)
            else:
                os.environ[STATUS_ENV] = old


__all__ = ["STATUS_ENV", "HeldRigs", "held_rigs", "is_url"]
