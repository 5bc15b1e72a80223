"""The ``stblab`` command.

Each command group lives beside the code it drives and is imported only when used, so
``stblab rma ...`` does not pay for OpenCV and ``stblab video ...`` does not pay for SQLAlchemy.

Example::

    stblab emulate rigs/emulated.yaml
    stblab firmware build --model STB-4K-X1 --version 2.1.0 --key vendor_ed25519 -o fw.img
    stblab video scan clip.ts --json
    stblab rma faults --status open --json
"""

from __future__ import annotations

import importlib
import sys

from lab.outcome import EXIT_CODE_TABLE, ExitCode

# group name -> (module holding a typer ``app``, one-line help)
GROUPS: dict[str, tuple[str, str]] = {
    "lab": ("lab.runner", "run the main job: emulated lab, scenario suite, report and RMA entries"),
    "emulate": ("lab.emulator.cli", "start emulated STBs for the emulated rigs of a rig file"),
    "firmware": ("lab.firmware.cli", "build, inspect and gate signed firmware images"),
    "ir": ("lab.drivers.ir_cli", "IR remotes: lircd.conf files and the rig's IR blaster"),
    "capture": ("lab.drivers.capture_cli", "HDMI capture of a rig: snapshots, clips, live stats"),
    "video": ("lab.video.cli", "offline video checks (scan a recorded clip)"),
    "net": ("lab.emulator.net_cli", "lab network: namespaces, impairment profiles, traffic, TS checks"),
    "rma": ("lab.rma.cli", "RMA database: faults, occurrences, cases, titles"),
    "warranty": ("lab.warranty.cli", "warranty verdicts for returned devices"),
    "explore": ("lab.explore.cli", "find rare faults on a rig and shrink them to a minimal reproducer"),
    "labgrid": ("lab.labgrid.cli", "many lab hosts: labgrid exporters, places, locks, gate plans"),
    "web": ("lab.web.cli", "the web app for warranty staff and lab triage; its accounts"),
}


def _usage() -> str:
    width = max(map(len, GROUPS))
    lines = ["usage: stblab COMMAND [ARGS]...", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in GROUPS.items()]
    lines += ["", "exit codes (every command; `lab`, `firmware gate` and `warranty check` decide with them):"]
    lines += [f"  {code}  {name:<14}  {meaning}" for code, name, meaning in EXIT_CODE_TABLE]
    lines += ["", "`stblab COMMAND --help` tells more."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``stblab`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        raise SystemExit(0)
    if args[0] in {"--version", "version"}:
        from lab import __version__

        print(f"stblab {__version__}")
        raise SystemExit(0)
    if args[0] not in GROUPS:
        print(f"stblab: unknown command '{args[0]}'\n\n{_usage()}", file=sys.stderr)
        raise SystemExit(ExitCode.BAD_INPUT)
    if args[:2] == ["video", "scan"]:  # a lean start-up path, no typer: see lab/video/scan_cli.py
        from lab.video.scan_cli import main as scan_main

        scan_main(args[2:], standalone=argv is None)  # from the command line: the whole process
        return
    module = importlib.import_module(GROUPS[args[0]][0])
    module.app(args[1:], prog_name=f"stblab {args[0]}")


if __name__ == "__main__":
    main()
