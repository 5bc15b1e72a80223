"""``stblab net`` with the emulator's IPTV headend: the network commands plus ``stblab net headend``.

The headend (channels drawn and encoded by the emulator) sits above the network layer, so its
command is added here, beside the emulator, onto :data:`lab.network.cli.app`; ``stblab net``
loads this module (see ``lab.cli``).

Example::

    stblab net headend rigs/emulated.yaml --rig stb-a --channels 4 --seconds 60
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from lab.errors import StblabError
from lab.network.cli import app, fail, rig_named, wait_until_stopped


@app.command("headend")
def headend(
    rigs_file: Path = typer.Argument(...),
    rig: str = typer.Option(..., "--rig"),
    channels: int = typer.Option(10, help="channels 1..N on 239.1.1.N:5000"),
    channel_map: Path = typer.Option(None, help="channel map YAML instead of the default"),
    seconds: float = typer.Option(None, help="how long (default: until Ctrl-C)"),
) -> None:
    """Play the IPTV channels on the rig's link (lab side) until Ctrl-C."""
    from lab.emulator.headend import ChannelMap, Headend
    from lab.network.netns import open_link

    try:
        link = open_link(rig_named(rigs_file, rig))
        cmap = ChannelMap.load(channel_map) if channel_map else ChannelMap.default(channels)
        demand = link.lab_if if link.namespace else None  # IGMP-driven, as a multicast router
        with Headend(cmap, interface_ip=link.lab_ip, on_demand_interface=demand) as head:
            typer.echo(f"headend on {link.lab_ip}: {len(cmap.channels)} channels; Ctrl-C to stop")
            t0 = time.monotonic()
            wait_until_stopped(seconds)
            typer.echo(json.dumps({"seconds": round(time.monotonic() - t0, 1), "datagrams": head.stats()}))
    except (StblabError, ValueError) as exc:
        fail(exc)


__all__ = ["app", "headend"]
