"""``stblab video ...``: offline video checks.

Example::

    stblab video scan clip.ts
    stblab video scan clip.ts --json --freeze-duration 1
    stblab video match logo.png screenshot.png --region 1000,0,280,160 --save annotated.png
    stblab video check screenshot.png --json
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from lab.video.artifacts import blockiness as blockiness_check
from lab.video.black import is_black
from lab.video.frame import Frame, load_frame
from lab.video.match import MatchParameters, match
from lab.video.region import Region
from lab.video.screens import is_colour_bars, is_no_signal

app = typer.Typer(help="Offline video checks on recorded clips.", no_args_is_help=True, add_completion=False)


@app.callback()
def _group() -> None:
    """Offline video checks on recorded clips."""


@app.command(
    "scan",
    add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def scan_command(ctx: typer.Context) -> None:
    """Print the intervals (stream seconds) where FILE was black, frozen, moving, blocky, or had no picture.

    `stblab video scan --help` lists the options (the command lives in lab.video.scan_cli).
    """
    from lab.video.scan_cli import main as scan_main

    scan_main(list(ctx.args))


def _region(text: str | None) -> Region:
    if not text:
        return Region.ALL
    try:
        x, y, w, h = (int(v) for v in text.split(","))
        return Region(x, y, w, h)
    except ValueError:
        raise typer.BadParameter(f"region must be X,Y,WIDTH,HEIGHT in pixels, not {text!r}") from None


def _load(path: Path) -> Frame:
    try:
        return load_frame(path)
    except ValueError as exc:
        typer.echo(f"stblab video: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command("match")
def match_command(
    reference: Path = typer.Argument(..., help="reference image (a transparent PNG's alpha is its mask)"),
    image: Path = typer.Argument(..., help="screenshot to search"),
    region: str = typer.Option(None, help="where to look: X,Y,WIDTH,HEIGHT"),
    match_threshold: float = typer.Option(MatchParameters.match_threshold, help="grey correlation needed (0-1)"),
    confirm_threshold: float = typer.Option(MatchParameters.confirm_threshold, help="colour difference allowed (0-1)"),
    save: Path = typer.Option(None, help="write the annotated screenshot here (PNG)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Try a reference image on a screenshot, as a scenario's match() would; exit 1 when it does not match.

    For making and tuning reference images: shows where the best candidate is, its grey score
    and the colour/brightness difference the confirmation saw.
    """
    frame = _load(image)
    try:
        result = match(
            reference,
            frame,
            region=_region(region),
            match_threshold=match_threshold,
            confirm_threshold=confirm_threshold,
        )
    except ValueError as exc:
        typer.echo(f"stblab video match: {exc}", err=True)
        raise typer.Exit(2) from None
    if save:
        result.save_png(save)
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.describe())
    raise typer.Exit(0 if result else 1)


@app.command("check")
def check_command(
    image: Path = typer.Argument(..., help="screenshot to judge"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Run the single-frame checks on a screenshot: black (both modes), colour bars, no signal, blockiness."""
    frame = _load(image)
    results = {
        "black": is_black(frame),
        "black_ratio": is_black(frame, mode="ratio"),
        "colour_bars": is_colour_bars(frame),
        "no_signal": is_no_signal(frame),
        "blockiness": blockiness_check(frame),
    }
    if as_json:
        typer.echo(json.dumps({k: r.to_dict() for k, r in results.items()}, indent=2))
        return
    for name, result in results.items():
        typer.echo(f"{name:<12} {'yes' if result else 'no ':<4} score={result.score:.3f}")
