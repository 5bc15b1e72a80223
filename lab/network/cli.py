"""``stblab net``: namespaces, impairment profiles, traffic, TS checks and the headend from a shell.

Examples::

    stblab net profiles                                  # list; `stblab net profile lossy-2pct` shows one
    stblab net up rigs/emulated.yaml --rig stb-a         # build the rig's namespace and link
    stblab net shape rigs/emulated.yaml --rig stb-a burst-loss --seconds 60
    stblab net traffic rigs/emulated.yaml --rig stb-a igmp-storm --pps 2000 --seconds 10
    stblab net check-ts capture.ts --json                # or udp://239.1.1.1:5000 --seconds 5
    stblab net headend rigs/emulated.yaml --rig stb-a    # (lab.emulator.net_cli) the channel map on the link
    stblab net down rigs/emulated.yaml --rig stb-a ; stblab net cleanup
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from pathlib import Path
from urllib.parse import urlparse

import typer

from lab.errors import StblabError

app = typer.Typer(help="lab network: namespaces, impairment profiles, traffic, TS checks", no_args_is_help=True)


def rig_named(rigs_file: Path, name: str):  # noqa: ANN202 - a lab.rig.Rig
    """The rig ``name`` of ``rigs_file`` (a usage error naming the rigs there when it is not one)."""
    from lab.rig import load_rigs

    rigs = load_rigs(rigs_file)
    if name not in rigs:
        raise typer.BadParameter(f"no rig '{name}' in {rigs_file} (have: {', '.join(rigs)})")
    return rigs[name]


def fail(exc: Exception) -> None:
    """End the command with exit 2 and the problem on stderr."""
    typer.echo(f"stblab net: {exc}", err=True)
    raise typer.Exit(2)


def wait_until_stopped(seconds: float | None) -> None:
    """Block for ``seconds`` (None: for ever) or until Ctrl-C / SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait(seconds)


@app.command("profiles")
def profiles(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """List the known impairment profiles."""
    from lab.network.profile import list_profiles, load_profile

    found = {name: load_profile(path) for name, path in list_profiles().items()}
    if as_json:
        typer.echo(json.dumps({n: p.as_record() for n, p in found.items()}, indent=2))
        return
    for name, p in found.items():
        typer.echo(f"{name:<18} {p.description}")


@app.command("profile")
def profile(name: str = typer.Argument(..., help="profile name or YAML path")) -> None:
    """Validate and show one profile (exit 2 with the problem when it is malformed)."""
    from lab.network.profile import load_profile

    try:
        typer.echo(json.dumps(load_profile(name).as_record(), indent=2))
    except StblabError as exc:
        fail(exc)


@app.command("up")
def up(
    rigs_file: Path = typer.Argument(..., help="rig file"),
    rig: str = typer.Option(..., "--rig", help="rig name"),
    keep: bool = typer.Option(True, help="leave the link up after exiting (remove with `stblab net down`)"),
) -> None:
    """Build the rig's namespace and veth link from its rig file."""
    from lab.network.netns import open_link

    try:
        link = open_link(rig_named(rigs_file, rig))
    except StblabError as exc:
        fail(exc)
    if keep and link.namespace:
        import lab.network.netns as netns

        netns._LIVE.remove(link) if link in netns._LIVE else None  # survive our exit
        rec = netns.state_dir() / f"{link.namespace}.json"
        if rec.exists():  # owner pid 0: kept until `stblab net down` or `cleanup --force`
            data = json.loads(rec.read_text())
            data["pid"] = 0
            rec.write_text(json.dumps(data))
    typer.echo(json.dumps(link.as_record()))


@app.command("down")
def down(rigs_file: Path = typer.Argument(...), rig: str = typer.Option(..., "--rig")) -> None:
    """Remove the rig's namespace and link."""
    from lab.network.netns import attach_link

    r = rig_named(rigs_file, rig)
    link = attach_link(r)
    if link is None:
        typer.echo(f"rig {rig}: no link up")
        return
    link._owned = True
    link.down()
    typer.echo(f"rig {rig}: namespace {link.namespace} removed")


@app.command("cleanup")
def cleanup(force: bool = typer.Option(False, help="also remove links of live runs and `net up`")) -> None:
    """Remove namespaces left behind by runs that died."""
    from lab.network.netns import cleanup_stale

    removed = cleanup_stale(force=force)
    typer.echo("\n".join(f"removed {n}" for n in removed) or "nothing to clean")


@app.command("shape")
def shape(
    rigs_file: Path = typer.Argument(...),
    profile_name: str = typer.Argument(..., metavar="PROFILE"),
    rig: str = typer.Option(..., "--rig"),
    seconds: float = typer.Option(None, help="how long (default: until Ctrl-C)"),
    backend: str = typer.Option("auto", help="auto | netem | userspace"),
) -> None:
    """Impair the rig's link with a profile until Ctrl-C (or --seconds); prints the counters."""
    from lab.network.impair import Shaper
    from lab.network.netns import open_link

    try:
        link = open_link(rig_named(rigs_file, rig))
        shaper = Shaper(link, backend=backend)
        shaper.apply(profile_name)
        typer.echo(f"rig {rig}: {shaper.profile.name} applied ({shaper.backend}); Ctrl-C to stop")
        wait_until_stopped(seconds)
        rec = shaper.record()
        shaper.clear()
        typer.echo(json.dumps(rec, indent=2))
    except StblabError as exc:
        fail(exc)


@app.command("traffic")
def traffic(
    rigs_file: Path = typer.Argument(...),
    kind: str = typer.Argument(..., help="udp | iptv | igmp-storm | broadcast-storm | arp-storm | fuzz"),
    rig: str = typer.Option(..., "--rig"),
    pps: float = typer.Option(1000.0, help="packets per second"),
    seconds: float = typer.Option(5.0),
    dst: str = typer.Option(None, help="destination (udp: default the box; iptv: a group)"),
    mbps: float = typer.Option(4.0, help="iptv: stream bitrate"),
    count: int = typer.Option(256, help="fuzz: packets"),
    seed: int = typer.Option(0, help="fuzz: seed"),
) -> None:
    """Send generated traffic on the rig's link (only to its lab_addresses)."""
    from lab.network.netns import open_link
    from lab.network.traffic import TrafficGenerator

    try:
        link = open_link(rig_named(rigs_file, rig))
        gen = TrafficGenerator(link)
        if kind == "udp":
            stats = gen.udp_stream(dst or link.box_ip, pps=pps, seconds=seconds)
        elif kind == "iptv":
            stats = gen.iptv_background(dst or "239.1.1.200", mbps=mbps, seconds=seconds)
        elif kind == "igmp-storm":
            stats = gen.igmp_storm(pps=pps, seconds=seconds)
        elif kind == "broadcast-storm":
            stats = gen.broadcast_storm(pps=pps, seconds=seconds)
        elif kind == "arp-storm":
            stats = gen.arp_storm(pps=pps, seconds=seconds)
        elif kind == "fuzz":
            stats = gen.fuzz(count=count, pps=pps, seed=seed)
        else:
            raise typer.BadParameter(f"unknown traffic kind '{kind}'")
    except StblabError as exc:
        fail(exc)
    typer.echo(json.dumps(stats.as_dict()))


@app.command("check-ts")
def check_ts(
    source: str = typer.Argument(..., help="a .ts file or udp://GROUP:PORT"),
    seconds: float = typer.Option(5.0, help="live: how long to listen"),
    namespace: str = typer.Option(None, help="live: join inside this network namespace"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """TR 101 290 priority 1 and PCR checks on a file or a live multicast channel (exit 1 on errors)."""
    from lab.network.ts_check import check_file, check_multicast

    if source.startswith("udp://"):
        u = urlparse(source)
        report = check_multicast(str(u.hostname), int(u.port or 5000), seconds, namespace=namespace)
    else:
        if not Path(source).is_file():
            fail(FileNotFoundError(f"{source}: no such file"))
        report = check_file(source)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        typer.echo(report.summary())
        for e in report.events[:20]:
            typer.echo(f"  {e.time:9.3f} s  {e.kind:<24} pid={e.pid}  {e.detail}")
    raise typer.Exit(0 if report.ok and report.packets else 1)


__all__ = ["app", "fail", "rig_named", "wait_until_stopped"]
