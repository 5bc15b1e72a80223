"""Launch emulated rigs: ``EmulatedLab`` runs ``stblab emulate``; ``ensure_emulated`` starts it when needed.

``stblab firmware gate`` and ``stblab warranty check`` work on real and emulated rigs alike; for
emulated rigs whose instruments do not answer, they start ``stblab emulate`` for the duration.

Example::

    with ensure_emulated(rig_file, [rigs["stb-a"]], mode="auto"):
        ...  # stb-a answers here
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lab.emulator.ports import _MARKER, reassign_ports
from lab.errors import InfraError
from lab.lifeline import tied
from lab.rig import Rig, load_rigs

EMULATE_MODES = ("auto", "always", "never")


def url_answers(url: str, timeout: float = 1.0) -> bool:
    """True when the TCP endpoint of an instrument URL (socket://, rfc2217://, http(s)://) accepts a connection."""
    p = urlparse(url)
    if p.scheme not in ("socket", "rfc2217", "http", "https") or not p.hostname:
        return False
    port = p.port or (443 if p.scheme == "https" else 80 if p.scheme == "http" else None)
    if port is None:
        return False
    try:
        with socket.create_connection((p.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def answers(rig: Rig, timeout: float = 1.0) -> bool:
    """True when the rig's console (else its PDU) accepts a TCP connection: for an emulated rig,
    its emulator runs."""
    url = rig.serial.url if rig.serial else rig.power.url if rig.power else None
    return url is not None and bool(url) and url_answers(url, timeout)


@contextlib.contextmanager
def ensure_emulated(
    rig_file: Path, rigs: list[Rig], mode: str = "auto", echo: Callable[[str], object] = print
) -> Iterator[None]:
    """Run the emulator for the emulated ``rigs`` unless they already answer (``mode``: auto|always|never).

    An emulator that does not start is an :class:`InfraError` (instrument ``emulator``).
    """
    if mode not in EMULATE_MODES:
        raise ValueError(f"emulate mode must be auto, always or never, not {mode!r}")
    emulated = [r for r in rigs if r.emulated]
    if not emulated or mode == "never" or (mode == "auto" and all(answers(r) for r in emulated)):
        yield
        return

    names = ", ".join(r.name for r in emulated)
    echo(f"starting the emulated lab for {names}")
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(EmulatedLab(rig_file, rigs=[r.name for r in emulated]))
        except EmulatorFailed as exc:  # the lab failing, never the box (and never exit 1 "new faults")
            raise InfraError(f"could not start the emulator: {exc}", rig=names, instrument="emulator") from exc
        yield


class EmulatorFailed(RuntimeError):
    """``stblab emulate`` exited or did not become ready; carries its stderr."""


class EmulatedLab:
    """Runs ``stblab emulate RIGFILE`` for the duration of a ``with`` block.

    ``rigs`` (names) limits which rigs are started; ``.rigs`` maps name -> :class:`lab.rig.Rig`.
    ``factory_reset=True`` forgets installed updates, history and files of the devices first.
    """

    def __init__(
        self,
        rig_file: str | os.PathLike[str],
        rigs: list[str] | tuple[str, ...] | None = None,
        *,
        ready_timeout: float = 60.0,
        factory_reset: bool = False,
    ) -> None:
        self.rig_file = Path(rig_file)
        all_rigs = load_rigs(self.rig_file)
        names = list(rigs) if rigs else [n for n, r in all_rigs.items() if r.emulated]
        self.rigs: dict[str, Rig] = {n: all_rigs[n] for n in names}
        self.ready_timeout = ready_timeout
        self.factory_reset = factory_reset
        self.proc: subprocess.Popen[bytes] | None = None
        self.output: list[str] = []
        self.stderr: list[str] = []
        self._ready: set[str] = set()
        self._cond = threading.Condition()

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> EmulatedLab:
        """Start the emulator and wait until every rig is ready (EmulatorFailed otherwise).

        For a rig file made by :func:`write_rig_file`, a port taken by someone else in the meantime
        is not an error: the file gets fresh ports and the emulator is started again (3 tries).
        """
        generated = self.rig_file.read_text(encoding="utf-8").startswith(_MARKER)
        for attempt in range(3):
            try:
                return self._start_once()
            except EmulatorFailed as exc:
                if not (generated and "address already in use" in str(exc)) or attempt == 2:
                    raise
                reassign_ports(self.rig_file)
                all_rigs = load_rigs(self.rig_file)
                self.rigs = {n: all_rigs[n] for n in self.rigs}
                self.output, self.stderr, self._ready = [], [], set()
        raise AssertionError("unreachable")

    def _start_once(self) -> EmulatedLab:
        cmd = [sys.executable, "-m", "lab.cli", "emulate", str(self.rig_file)]
        for name in self.rigs:
            cmd += ["--rig", name]
        if self.factory_reset:
            cmd.append("--factory-reset")
        self.proc = subprocess.Popen(
            tied(cmd),  # a killed launcher (pytest, stblab lab) takes the emulator along
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        threading.Thread(target=self._read, args=(self.proc.stdout, self.output), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True).start()
        try:
            self._wait_ready(self.proc)
        except BaseException:  # not ready, or Ctrl-C / a test timeout while waiting: nothing stays behind
            self.stop()
            raise
        return self

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.ready_timeout
        with self._cond:
            while self._ready != set(self.rigs):
                if proc.poll() is not None:
                    self._cond.wait(0.2)  # let the readers catch the last lines
                    raise EmulatorFailed(f"stblab emulate exited with status {proc.returncode}: {self.reason()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise EmulatorFailed(f"stblab emulate not ready within {self.ready_timeout:.0f} s: {self.reason()}")
                self._cond.wait(min(left, 0.2))

    def _read(self, stream: Any, sink: list[str]) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                sink.append(line)
                if line.startswith("ready "):
                    self._ready.add(line[6:].strip())
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def reason(self) -> str:
        """The emulator's stderr so far (why it failed)."""
        with self._cond:
            return "\n".join(self.stderr[-20:]) or "(no output)"

    def terminate(self) -> None:
        """Ask the emulator to stop (SIGTERM) without waiting: stop several labs at once, then ``stop()`` each.

        Example::

            for lab in labs: lab.terminate()
            for lab in labs: lab.stop()      # the waits overlap
        """
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait, then SIGKILL the whole process group; returns the exit status."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # any child left behind
        return proc.wait()

    def kill(self) -> None:
        """Kill the emulator and all its rig processes at once (SIGKILL to the process group)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> EmulatedLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["EMULATE_MODES", "EmulatedLab", "EmulatorFailed", "answers", "ensure_emulated", "url_answers"]
