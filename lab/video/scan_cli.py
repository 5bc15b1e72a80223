"""``stblab video scan FILE``: the offline scan's command, on a lean start-up path.

The scan is often run over many recorded clips, and its CPU time is measured against ffmpeg's
``blackdetect,freezedetect`` (benchmarks/video_scan.py) as a whole process. So this command is
parsed with :mod:`argparse` instead of typer (whose import brings click, rich and pydantic), and
``stblab`` dispatches ``video scan`` here before building any typer app. It also keeps OpenBLAS
from starting its thread pool when numpy loads: the scan never multiplies matrices, and the
idle pool costs tens of milliseconds of CPU at start-up. When the command is the whole process it
ends with ``os._exit`` once its output is flushed, skipping the interpreter's teardown of what
the libraries made (see :func:`_exit_now`).

Example::

    stblab video scan clip.ts
    stblab video scan clip.ts --json --freeze-duration 1 --no-blockiness
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path
from typing import NoReturn

PROG = "stblab video scan"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Print the intervals (stream seconds) where FILE was black, frozen, moving, blocky, "
        "or had no picture.",
    )
    p.add_argument("file", type=Path, help="clip to scan (anything PyAV/FFmpeg opens: .ts, .mp4, .mkv, MJPEG .avi)")
    p.add_argument("--json", dest="as_json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--freeze-duration", type=float, default=2.0, help="seconds without change before a freeze counts")
    p.add_argument("--black-min", type=float, default=0.0, help="shortest black interval reported, seconds")
    p.add_argument(
        "--pix-th",
        type=float,
        default=0.10,
        help="black pixel threshold, fraction of the luma range (blackdetect pix_th)",
    )
    p.add_argument(
        "--pic-th", type=float, default=0.98, help="fraction of dark pixels for a black picture (blackdetect pic_th)"
    )
    p.add_argument("--block-size", type=int, default=16, help="block grid for the artifact score, frame pixels")
    p.add_argument(
        "--blockiness",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="score blockiness per frame (decoder-reported damage is always used)",
    )
    p.add_argument("--backend", default="pyav", choices=["pyav", "opencv"], help="decoder")
    return p


def main(argv: list[str] | None = None, *, standalone: bool | None = None) -> None:
    """Run ``stblab video scan`` with ``argv`` (the arguments after ``scan``); exits 2 on bad input.

    ``standalone``: the command is the whole process, so it ends it once the report is flushed
    (:func:`_exit_now`); ``None`` decides from ``argv`` (:func:`_owns_process`).
    """
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if not args.file.is_file():
        print(f"{PROG}: no such file: {args.file}", file=sys.stderr)
        raise SystemExit(2)
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # see the module docstring
    collecting = gc.isenabled()
    gc.disable()  # imports allocate ~10^5 objects and none are garbage: collections there are pure cost
    try:
        import lab.video.scan  # noqa: F401  (numpy and OpenCV with it)

        if args.backend == "pyav":
            import av  # noqa: F401  (the reader's decoder, imported here with the collector off)
    finally:
        gc.freeze()  # ... and keep the scan's collections from walking them again
        if collecting:
            gc.enable()
    if not (_owns_process(argv) if standalone is None else standalone):
        try:
            _scan(args)
        finally:
            gc.unfreeze()  # a caller in the same process (tests, a script) gets its collector back as it was
        return
    try:
        _scan(args)
    except SystemExit as exc:
        _exit_now(exc.code if isinstance(exc.code, int) else 1)
    _exit_now(0)


def _owns_process(argv: list[str] | None) -> bool:
    """Whether this command is the whole process: ``stblab video scan ...`` (or ``python -m lab.cli``)
    with ``argv`` straight from the command line, not a caller's list in a longer-lived process."""
    return argv is None or sys.argv[1:] == ["video", "scan", *argv]


def _exit_now(code: int) -> NoReturn:
    """End the process once the report is written, without the interpreter's teardown.

    Teardown frees, one by one, the ~10^5 objects numpy, OpenCV and PyAV made at import and runs a
    last full collection over them: 0.02-0.03 s of CPU on a scan that is otherwise done (measured
    beside ffmpeg's whole run of ~0.03 s, see benchmarks/video_scan.md). The scan holds nothing
    that needs it: the clip is closed, no file is left open for writing, no ``atexit`` work is the
    scan's. Output is flushed first; if that fails (a closed pipe), the ordinary exit reports it.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        raise SystemExit(code) from None
    os._exit(code)


def _scan(args: argparse.Namespace) -> None:
    """Scan ``args.file`` and print the report (table or JSON); exits 2 on bad thresholds or an unreadable file."""
    from lab.video.scan import KINDS, ScanOptions, scan

    try:
        options = ScanOptions(
            black_pixel_threshold=args.pix_th,
            black_picture_threshold=args.pic_th,
            black_min=args.black_min,
            freeze_duration=args.freeze_duration,
            artifact_block_size=args.block_size,
            detect_artifacts=args.blockiness,
        )
        report = scan(args.file, options, backend=args.backend)
    except ValueError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.as_json:
        import json

        print(json.dumps(report.to_dict(), indent=2))
        return
    fps = f"{report.fps:.3f} fps" if report.fps else "unknown fps"
    errors = f", {report.decode_errors} undecodable packets" if report.decode_errors else ""
    print(f"{args.file}: {report.frames} frames, {report.duration:.3f} s, {fps}, {report.dropped} missing{errors}")
    for kind in KINDS:
        intervals = report.intervals[kind]
        if not intervals:
            print(f"{kind:<11} none")
        for i in intervals:
            print(f"{kind:<11} {i.start:9.3f} - {i.end:9.3f}  ({i.duration:.3f} s)")


if __name__ == "__main__":
    main()
