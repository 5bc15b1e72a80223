"""``stblab firmware gate``: the command-line face of :mod:`lab.firmware.gate`."""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import typer

from lab.errors import InfraError, RigFileError
from lab.firmware.image import ImageError
from lab.outcome import ExitCode, exit_code_help
from lab.textsafe import for_terminal

EXIT_INFRA, EXIT_INTERNAL = ExitCode.INFRA_ERROR, ExitCode.INTERNAL_ERROR
EXIT_USAGE = EXIT_REFUSED = ExitCode.BAD_INPUT  # as lab.firmware.gate: a refused image is bad input


def gate(
    image: Path = typer.Argument(..., help="firmware image to gate"),
    rigs: str = typer.Option(..., "--rigs", help="rig file, or labgrid://HOST:PORT/?model=... (places held)"),
    select: str | None = typer.Option(None, "--select", help="rig name or selector, e.g. model=STB-4K-X1"),
    suite: str = typer.Option("smoke", "--suite", help="smoke, full, or pytest arguments"),
    run_dir: Path | None = typer.Option(None, "--run-dir", help="default reports/gate-<UTC timestamp>"),
    rma_db: str | None = typer.Option(None, "--rma-db", help="RMA database URL or SQLite path"),
    trusted_key: list[Path] = typer.Option([], "--trusted-key", help="extra vendor public key (repeatable)"),
    emulate: str = typer.Option("auto", "--emulate", help="auto|always|never: start emulated rigs"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
    test_timeout: float | None = typer.Option(None, "--test-timeout", help="seconds per test (default 300)"),
    rig_timeout: float | None = typer.Option(None, "--rig-timeout", help="seconds for one rig's suite"),
    job_timeout: float | None = typer.Option(None, "--job-timeout", help="seconds for the whole suite run"),
) -> None:
    """Validate IMAGE, flash the selected rigs, run the suite and say whether the build may ship.

    The build may ship (exit 0) only when every selected rig was flashed and ran every planned test,
    and each passed. Exit codes (the table of `stblab --help`): 0 may ship; 1 device faults; 2 infra
    errors or timed-out tests; 3 test errors; 4 bad input (incl. a refused image, a selection with
    no tests); 5 incomplete (a rig or test did not run, a skip); 6 internal error.
    """
    # imported here: `stblab firmware build/info/--help` need neither rigs nor the job runner
    from lab.emulated_lab import EMULATE_MODES
    from lab.firmware.gate import run_gate
    from lab.jobs.spec import JobInputError

    if emulate not in EMULATE_MODES:
        print(f"stblab firmware gate: --emulate must be one of {', '.join(EMULATE_MODES)}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE)
    if not image.exists() or not image.is_file():  # before the rig file is read: the first problem named
        problem = "no such file" if not image.exists() else "not a readable file"
        print(f"stblab firmware gate: image {for_terminal(str(image), markup=False)} unreadable: {problem}",
              file=sys.stderr)  # fmt: skip
        raise typer.Exit(EXIT_USAGE)
    echo = (lambda *_: None) if as_json else (lambda msg: typer.echo(msg))
    try:
        result = run_gate(
            image, rigs, select=select, suite=suite, run_dir=run_dir, rma_db=rma_db,
            extra_keys=list(trusted_key), emulate=emulate, echo=echo, test_timeout=test_timeout,
            rig_timeout=rig_timeout, job_timeout=job_timeout,
        )  # fmt: skip
    except ImageError as exc:
        if as_json:
            print(json.dumps({"refused": True, "reason": exc.reason, "message": str(exc)}))
        print(f"stblab firmware gate: image refused ({exc.reason}): {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_REFUSED) from None
    except (RigFileError, JobInputError) as exc:
        print(f"stblab firmware gate: {for_terminal(exc, markup=False)}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE) from None
    except InfraError as exc:  # e.g. the emulated lab did not start: no verdict on the build
        print(
            f"stblab firmware gate: lab failure, no verdict on the build: {for_terminal(exc, markup=False)}",
            file=sys.stderr,
        )
        raise typer.Exit(EXIT_INFRA) from None
    except Exception:  # a bug in stblab: never exit 1, which CI reads as "new device faults"
        traceback.print_exc()
        print("stblab firmware gate: internal error, no verdict on the build", file=sys.stderr)
        raise typer.Exit(EXIT_INTERNAL) from None
    if as_json:
        print(json.dumps(json.loads((Path(result.run_dir) / "gate.json").read_text()), indent=2))
    else:
        for line in result.lines():
            typer.echo(line)
        typer.echo(f"details: {result.run_dir}/gate.json; JUnit {result.run_dir}/<rig>/junit.xml")
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    """Add the ``gate`` command to the ``stblab firmware`` group."""
    app.command("gate", epilog=exit_code_help())(gate)
