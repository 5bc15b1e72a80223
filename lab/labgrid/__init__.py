"""Rigs from a labgrid coordinator: many lab hosts, places locked while used.

* :mod:`lab.labgrid.coordinator` -- the only module importing labgrid (a synchronous client link);
* :mod:`lab.labgrid.request` -- ``labgrid://HOST:PORT/?model=...&count=N&wait=30m`` rig sources;
* :mod:`lab.labgrid.resources` -- rig instruments <-> exported resources;
* :mod:`lab.labgrid.models` -- per-model facts that complete a place into a rig;
* :mod:`lab.labgrid.source` -- ``held_rig_file(url, path)``: reserve, acquire, keepalive, release;
* :mod:`lab.labgrid.exporter_config`, :mod:`lab.labgrid.sync` -- inventory in labgrid;
* :mod:`lab.labgrid.janitor` -- free places of jobs that no longer run;
* :mod:`lab.labgrid.plan` -- a gate over many hosts: plan and collect;
* :mod:`lab.labgrid.cli` -- ``stblab labgrid ...``.

Importing this package does not import labgrid (it is an optional extra: ``stblab[labgrid]``).
"""

from lab.labgrid.request import PlaceRequest, is_labgrid_url, parse_request

__all__ = ["PlaceRequest", "is_labgrid_url", "parse_request"]
