"""``stblab ir ...``: look into remote files and press keys on a rig from the shell.

Example::

    stblab ir keys rigs/remotes/stblab-rc1.lircd.conf
    stblab ir encode rigs/remotes/stblab-rc1.lircd.conf KEY_OK --repeat 1
    stblab ir decode rigs/remotes/stblab-rc1.lircd.conf 9000 4500 560 560 ...
    stblab ir check --rigs rigs/emulated.yaml --rig stb-a
    stblab ir press --rigs rigs/emulated.yaml --rig stb-a KEY_MENU KEY_DOWN KEY_OK
    stblab ir hold --rigs rigs/emulated.yaml --rig stb-a KEY_VOLUMEUP 1.5

Exit status: 0 done, 1 a decode found nothing, 2 bad input (file, key, arguments), 3 the
instrument failed (InfraError).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import typer

from lab.drivers.ir import IrRemote, ItachBlaster
from lab.errors import InfraError, RigFileError, TestError
from lab.lircd import LircdError, Remote, load_remotes, pick_remote

app = typer.Typer(
    help="IR remotes: lircd.conf files and the rig's IR blaster.", no_args_is_help=True, add_completion=False
)


@app.callback()
def _group() -> None:
    """IR remotes: lircd.conf files and the rig's IR blaster."""


def _fail(msg: str, code: int) -> typer.Exit:
    typer.echo(f"stblab ir: {msg}", err=True)
    return typer.Exit(code)


def _remote(path: Path, name: str | None) -> Remote:
    try:
        return pick_remote(load_remotes(path), name, path, hint="give --remote")
    except LircdError as exc:
        raise _fail(str(exc), 2) from None


@app.command("keys")
def keys_command(
    file: Path = typer.Argument(..., help="a lircd.conf file"),
    remote: str | None = typer.Option(None, help="only this remote of the file"),
) -> None:
    """List the remotes of FILE with their protocol and keys."""
    try:
        remotes = load_remotes(file)
    except LircdError as exc:
        raise _fail(str(exc), 2) from None
    for r in remotes:
        if remote and r.name != remote:
            continue
        kind = "raw" if r.is_raw else "|".join(sorted(r.flags)) or "SPACE_ENC"
        typer.echo(f"{r.name}: {kind}, {r.frequency} Hz, {len(r.keys)} keys")
        for key in r.keys:
            typer.echo(f"  {key}")


@app.command("encode")
def encode_command(
    file: Path = typer.Argument(..., help="a lircd.conf file"),
    key: str = typer.Argument(..., help="key name, e.g. KEY_OK"),
    remote: str | None = typer.Option(None, help="remote name when the file has several"),
    repeat: int = typer.Option(0, min=0, help="repeat frames after the first"),
    toggle: int | None = typer.Option(None, min=0, max=1, help="toggle bit value (RC-5/RC-6)"),
    itach: bool = typer.Option(False, "--itach", help="print the iTach sendir body (carrier periods)"),
) -> None:
    """Print the pulse/space timings (µs) of KEY, or with --itach the sendir command body."""
    r = _remote(file, remote)
    try:
        timings = r.encode(key, repeat=repeat, toggle=toggle, trailing_gap=itach)
    except LircdError as exc:
        raise _fail(str(exc), 2) from None
    if itach:
        periods = ItachBlaster.to_periods(timings, r.frequency)
        typer.echo(f"sendir,1:1,1,{r.frequency},1,1," + ",".join(map(str, periods)))
    else:
        typer.echo(" ".join(map(str, timings)))


@app.command("decode")
def decode_command(
    file: Path = typer.Argument(..., help="a lircd.conf file"),
    timings: list[int] | None = typer.Argument(None, help="pulse/space durations in µs (default: read stdin)"),
    remote: str | None = typer.Option(None, help="only this remote of the file"),
) -> None:
    """Which key(s) the pulse/space TIMINGS carry (as mode2 prints them, or a plain list)."""
    values = list(timings or [])
    if not values:
        words = sys.stdin.read().replace(",", " ").split()
        values = [int(w) for w in words if w.lstrip("-").isdigit()]
    try:
        remotes = load_remotes(file)
        candidates = remotes if remote is None else [pick_remote(remotes, remote, file)]
    except LircdError as exc:
        raise _fail(str(exc), 2) from None
    found = False
    for r in candidates:
        for press in r.decode_all(values):
            found = True
            toggle = "" if press.toggle is None else f" toggle={press.toggle}"
            typer.echo(f"{r.name} {press.key or '(repeat)'} repeats={press.repeats}{toggle}")
    if not found:
        raise _fail("no key of the remote(s) in these timings", 1)


def _rig_remote(rigs: Path, rig: str, delay: float | None = None) -> IrRemote:
    from lab.rig import load_rigs

    try:
        chosen = load_rigs(rigs).get(rig)
    except RigFileError as exc:
        raise _fail(str(exc), 2) from None
    if chosen is None:
        raise _fail(f"{rigs}: no rig named {rig!r}", 2)
    try:
        return IrRemote.from_rig(chosen, **({} if delay is None else {"inter_press_delay": delay}))
    except TestError as exc:
        raise _fail(str(exc), 2) from None
    except InfraError as exc:
        raise _fail(str(exc), 3) from None


def _run(action: Callable[[], object]) -> None:
    try:
        action()
    except TestError as exc:
        raise _fail(str(exc), 2) from None
    except InfraError as exc:
        raise _fail(str(exc), 3) from None


RIGS = typer.Option(..., "--rigs", help="rig file")
RIG = typer.Option(..., "--rig", help="rig name")


@app.command("check")
def check_command(rigs: Path = RIGS, rig: str = RIG) -> None:
    """Ask the rig's IR blaster whether it answers (and, for lircd, knows the remote)."""
    remote = _rig_remote(rigs, rig)
    with remote:
        _run(lambda: typer.echo(remote.check()))


@app.command("press")
def press_command(
    keys: list[str] = typer.Argument(..., help="key names, pressed in order"),
    rigs: Path = RIGS,
    rig: str = RIG,
    delay: float | None = typer.Option(None, min=0, help="seconds between presses (default: the rig's)"),
) -> None:
    """Press KEYS on the rig's box, one after the other."""
    remote = _rig_remote(rigs, rig, delay)
    with remote:
        _run(lambda: remote.press_many(keys))
    typer.echo(f"pressed {' '.join(keys)} on {rig}")


@app.command("hold")
def hold_command(
    key: str = typer.Argument(..., help="key name"),
    seconds: float = typer.Argument(..., min=0, help="how long to hold it"),
    rigs: Path = RIGS,
    rig: str = RIG,
) -> None:
    """Hold KEY down for SECONDS on the rig's box."""
    remote = _rig_remote(rigs, rig)
    with remote:
        _run(lambda: remote.hold(key, seconds))
    typer.echo(f"held {key} for {seconds:g} s on {rig}")
