"""``stblab video ...``: offline video checks.

Example::

    stblab video scan clip.ts
    stblab video scan clip.ts --json --freeze-duration 1
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from lab.video.scan import KINDS, ScanOptions, scan

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
        )
        report = scan(file, options, backend=backend)
    except ValueError as exc:
        typer.echo(f"stblab video scan: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    fps = f"{report.fps:.3f} fps" if report.fps else "unknown fps"
    typer.echo(f"{file}: {report.frames} frames, {report.duration:.3f} s, {fps}, {report.dropped} missing")
    for kind in KINDS:
        intervals = report.intervals[kind]
        if not intervals:
            typer.echo(f"{kind:<11} none")
        for i in intervals:
            typer.echo(f"{kind:<11} {i.start:9.3f} - {i.end:9.3f}  ({i.duration:.3f} s)")
