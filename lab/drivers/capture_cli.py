"""``stblab capture ...``: look at a rig's HDMI output from the shell.

Example::

    stblab capture snapshot --rigs rigs/emulated.yaml --rig stb-a screen.png
    stblab capture clip --rigs rigs/emulated.yaml --rig stb-a --seconds 5 last5s.avi
    stblab capture watch --rigs rigs/emulated.yaml --rig stb-a --seconds 10

Exit status: 0 done, 1 no signal (the encoder answers, no picture), 2 bad input, 3 the capture
instrument failed (InfraError).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer

from lab.drivers.capture import Capture, CaptureTimeout
from lab.errors import InfraError, RigFileError, TestError

T = TypeVar("T")

app = typer.Typer(
    help="HDMI capture of a rig: snapshots, clips, live stats.", no_args_is_help=True, add_completion=False
)

RIGS = typer.Option(..., "--rigs", help="rig file")
RIG = typer.Option(..., "--rig", help="rig name")


@app.callback()
def _group() -> None:
    """HDMI capture of a rig: snapshots, clips, live stats."""


def _fail(msg: str, code: int) -> typer.Exit:
    typer.echo(f"stblab capture: {msg}", err=True)
    return typer.Exit(code)


def _capture(rigs: Path, rig: str, ring_seconds: float | None = None) -> Capture:
    from lab.rig import load_rigs

    try:
        chosen = load_rigs(rigs).get(rig)
    except RigFileError as exc:
        raise _fail(str(exc), 2) from None
    if chosen is None:
        raise _fail(f"{rigs}: no rig named {rig!r}", 2)
    kw = {} if ring_seconds is None else {"ring_seconds": ring_seconds}
    try:
        return Capture.from_rig(chosen, **kw).start()  # started here, so a missing source is exit 3
    except TestError as exc:
        raise _fail(str(exc), 2) from None
    except InfraError as exc:
        raise _fail(str(exc), 3) from None


def _guard(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except CaptureTimeout as exc:
        raise _fail(str(exc), 1) from None
    except TestError as exc:
        raise _fail(str(exc), 2) from None
    except InfraError as exc:
        raise _fail(str(exc), 3) from None


@app.command("snapshot")
def snapshot_command(
    out: Path = typer.Argument(..., help="image file to write (.png, .jpg, ...)"),
    rigs: Path = RIGS,
    rig: str = RIG,
    timeout: float = typer.Option(10.0, help="seconds to wait for a picture"),
) -> None:
    """Write the rig's current HDMI picture to OUT."""
    with _capture(rigs, rig) as cap:
        frame = _guard(lambda: cap.next_frame(timeout=timeout))
        _guard(lambda: cap.save_frame(out, frame))
    typer.echo(f"{out}: {frame.width}x{frame.height} frame {frame.seq}")


@app.command("clip")
def clip_command(
    out: Path = typer.Argument(..., help="clip to write (.avi, .mkv, .mov, .mp4; Motion JPEG)"),
    rigs: Path = RIGS,
    rig: str = RIG,
    seconds: float = typer.Option(5.0, min=0.1, help="how long to record"),
    timeout: float = typer.Option(10.0, help="seconds to wait for the first picture"),
) -> None:
    """Record SECONDS of the rig's HDMI output into OUT."""
    with _capture(rigs, rig, ring_seconds=seconds + 1) as cap:
        _guard(lambda: cap.next_frame(timeout=timeout))
        time.sleep(seconds)
        _guard(lambda: cap.save_clip(out, seconds))
        stats = cap.stats()
    typer.echo(f"{out}: {stats['ring_frames']} frames kept, {stats['dropped']} dropped by the source")


@app.command("watch")
def watch_command(
    rigs: Path = RIGS,
    rig: str = RIG,
    seconds: float = typer.Option(10.0, min=0.5, help="how long to watch"),
) -> None:
    """Print, once a second, the signal state, frame rate and drop counters of the rig's capture."""
    with _capture(rigs, rig) as cap:
        end = time.monotonic() + seconds
        last = cap.frames_received
        while time.monotonic() < end:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            now = cap.frames_received
            _guard(cap.raise_if_lost)
            typer.echo(
                f"{cap.signal:9s} fps={now - last:3d} frames={now} dropped={cap.dropped} "
                f"ring={cap.ring.nbytes / 1e6:.1f}MB"
            )
            last = now
