"""``stblab emulate RIGFILE [--rig NAME]...``: one emulated STB per emulated rig, each its own process.

Prints ``ready NAME`` per rig once all its instruments listen (launchers wait for these lines),
runs until Ctrl-C or SIGTERM, then stops the children cleanly. If one rig's emulator dies (or
cannot bind a port), the others keep running: ``died NAME: ...`` goes to stdout and the reason to
stderr, and the command exits non-zero once it is stopped (or when every rig has died).

Example::

    $ stblab emulate rigs/emulated.yaml
    ready stb-a
    ready stb-b
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import typer

from lab.emulator.config import load_emulated
from lab.errors import RigFileError
from lab.lifeline import tied

app = typer.Typer(add_completion=False, help="Start emulated STBs for the emulated rigs of a rig file.")

EXIT_RIGFILE = 2
EXIT_CHILD = 1


def reset_state(state_dir: Path) -> None:
    """Factory reset of one device: slots, boot counters, history and its /tmp, /data, /root go;
    the host key stays (the device keeps its identity, so known_hosts stays valid)."""
    for name in ("device.json", "device.tmp"):
        (state_dir / name).unlink(missing_ok=True)
    for sub in ("slots", "fs"):
        shutil.rmtree(state_dir / sub, ignore_errors=True)


def _reader(name: str, proc: subprocess.Popen[bytes], events: queue.Queue[tuple[str, str]]) -> None:
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode("utf-8", "replace").strip()
        if line == f"ready {name}":
            events.put(("ready", name))
        elif line:
            print(f"{name}: {line}", flush=True)
    events.put(("eof", name))


def _stop(procs: dict[str, subprocess.Popen[bytes]], grace: float = 5.0) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@app.command()
def emulate(
    rig_file: Path = typer.Argument(..., help="rig file (YAML) listing the rigs"),
    rig: list[str] = typer.Option(None, "--rig", help="emulate only this rig (repeatable)"),
    factory_reset: bool = typer.Option(
        False, "--factory-reset", help="forget installed updates, history and files first (keeps serial and host key)"
    ),
) -> None:
    """Start one emulated STB per emulated rig (rigs with an `emulate:` section)."""
    try:
        pairs = load_emulated(rig_file, rig or None)
    except RigFileError as exc:
        print(f"stblab emulate: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_RIGFILE) from exc
    if factory_reset:
        for r, settings in pairs:
            reset_state(Path(str(settings.state_dir)))
            print(f"factory reset {r.name}", flush=True)
    events: queue.Queue[tuple[str, str]] = queue.Queue()
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        stop.set()
        events.put(("stop", ""))

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    # Ctrl-C reaches the whole foreground process group; the children leave it to this process,
    # which stops them in order (STBLAB_EMULATE_CHILD makes them ignore SIGINT).
    env = dict(os.environ, PYTHONUNBUFFERED="1", STBLAB_EMULATE_CHILD="1")
    for r, _ in pairs:
        procs[r.name] = subprocess.Popen(
            tied([sys.executable, "-m", "lab.emulator.process", str(rig_file), r.name]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        threading.Thread(target=_reader, args=(r.name, procs[r.name], events), daemon=True).start()
    code = 0
    stopped: set[str] = set()
    try:
        while not stop.is_set():
            try:
                kind, name = events.get(timeout=0.5)
            except queue.Empty:
                kind, name = "", ""
            if kind == "ready":
                print(f"ready {name}", flush=True)
            dead = [(n, p) for n, p in procs.items() if p.poll() is not None and n not in stopped]
            for n, p in dead:
                stopped.add(n)
                if p.returncode == 0:  # that rig was told to stop (SIGTERM to its process)
                    print(f"stopped {n}", flush=True)
                    continue
                # One rig's emulator dying is that rig's problem: the other rigs keep their boxes.
                how = f"signal {signal.Signals(-p.returncode).name}" if p.returncode < 0 else f"status {p.returncode}"
                print(f"died {n}: emulator process exited with {how}", flush=True)
                alive = [x for x in procs if x not in stopped]
                still = f"; still running: {', '.join(alive)}" if alive else ""
                print(f"stblab emulate: rig {n}: emulator process exited with {how}{still}", file=sys.stderr,
                      flush=True)  # fmt: skip
                code = EXIT_CHILD
            if len(stopped) == len(procs):
                break
    finally:
        _stop(procs)
    if code:
        raise typer.Exit(code)


__all__ = ["app"]
