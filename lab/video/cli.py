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
from lab.video.scan import KINDS, ScanOptions, scan
from lab.video.screens import is_colour_bars, is_no_signal

app = typer.Typer(help="Offline video checks on recorded clips.", no_args_is_help=True, add_completion=False)


@app.callback()
def _group() -> None:
    """Offline video checks on recorded clips."""


@app.command("scan")
def scan_command(
    file: Path = typer.Argument(..., help="clip to scan (anything PyAV/FFmpeg opens: .ts, .mp4, .mkv, MJPEG .avi)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of a table"),
    freeze_duration: float = typer.Option(2.0, help="seconds without change before a freeze counts"),
    black_min: float = typer.Option(0.0, help="shortest black interval reported, seconds"),
    pix_th: float = typer.Option(0.10, help="black pixel threshold, fraction of the luma range (blackdetect pix_th)"),
    pic_th: float = typer.Option(0.98, help="fraction of dark pixels for a black picture (blackdetect pic_th)"),
    block_size: int = typer.Option(16, help="block grid for the artifact score, frame pixels"),
    blockiness: bool = typer.Option(
        True, "--blockiness/--no-blockiness", help="score blockiness per frame (decoder-reported damage is always used)"
    ),
    backend: str = typer.Option("pyav", help="decoder: pyav or opencv"),
) -> None:
    """Print the intervals (stream seconds) where FILE was black, frozen, moving, blocky, or had no picture."""
    if not file.is_file():
        typer.echo(f"stblab video scan: no such file: {file}", err=True)
        raise typer.Exit(2)
    try:
        options = ScanOptions(
            black_pixel_threshold=pix_th,
            black_picture_threshold=pic_th,
            black_min=black_min,
            freeze_duration=freeze_duration,
            artifact_block_size=block_size,
            detect_artifacts=blockiness,
        )
        report = scan(file, options, backend=backend)
    except ValueError as exc:
        typer.echo(f"stblab video scan: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    fps = f"{report.fps:.3f} fps" if report.fps else "unknown fps"
    errors = f", {report.decode_errors} undecodable packets" if report.decode_errors else ""
    typer.echo(f"{file}: {report.frames} frames, {report.duration:.3f} s, {fps}, {report.dropped} missing{errors}")
    for kind in KINDS:
        intervals = report.intervals[kind]
        if not intervals:
            typer.echo(f"{kind:<11} none")
        for i in intervals:
            typer.echo(f"{kind:<11} {i.start:9.3f} - {i.end:9.3f}  ({i.duration:.3f} s)")


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
