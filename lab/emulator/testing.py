"""Launch emulated rigs from tests: a rig file on free loopback ports and a context manager.

Example::

    from lab.emulator.testing import EmulatedLab, write_rig_file

    def test_boot(tmp_path):
        rig_file = write_rig_file(tmp_path, firmware="2.1.0", boot={"bootdelay": 1})
        with EmulatedLab(rig_file) as lab:
            rig = lab.rigs["stb-a"]          # a lab.rig.Rig: rig.serial.url, rig.power.url, ...
            ...

``EmulatedLab`` runs ``stblab emulate`` as a subprocess (its own session), waits (bounded) for
one ``ready NAME`` line per rig, and on exit sends SIGTERM (then SIGKILL). ``kill()`` kills the
whole emulator at once, for tests that need an instrument to die mid-call.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import yaml

from lab.rig import Rig, load_rigs

_RIG_KEYS = {"model", "features", "serial", "ssh", "ir", "video", "power", "network"}
_REPO = Path(__file__).resolve().parents[2]
REMOTE = _REPO / "rigs" / "remotes" / "stblab-rc1.lircd.conf"


def free_port() -> int:
    """A loopback TCP port that is free right now, below the ephemeral range (see _PORT_RANGE)."""
    return _free_ports(1)[0]


# Ports for emulated rigs come from below the kernel's ephemeral range (32768-60999), so the
# outgoing connections of parallel tests (which take ephemeral ports) cannot steal them between
# the time a rig file is written and the time the emulator binds.
_PORT_RANGE = (20000, 32000)
_rng = random.Random()


# Ports handed out recently by this process: a rig file's rigs are written one after another
# before anything binds, so a port free for the first rig must not be handed to the second.
_handed: deque[int] = deque(maxlen=4000)
_handed_lock = threading.Lock()


def _free_ports(n: int) -> list[int]:
    """``n`` distinct loopback TCP ports that are free right now (checked by binding them) and
    not handed out recently by this process."""
    socks: list[socket.socket] = []
    try:
        with _handed_lock:
            while len(socks) < n:
                port = _rng.randrange(*_PORT_RANGE)
                if port in _handed:
                    continue
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    s.close()
                    continue
                socks.append(s)
                _handed.append(port)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


_MARKER = "# written by lab.emulator.testing.write_rig_file (ports may be reassigned when taken)\n"
_PORT_RX = re.compile(r"(127\.0\.0\.1:|\bport: )(\d{4,5})\b")


def reassign_ports(path: Path) -> None:
    """Give every loopback port in a generated rig file a fresh free port (same port -> same new port)."""
    text = path.read_text(encoding="utf-8")
    old = sorted({int(m.group(2)) for m in _PORT_RX.finditer(text)})
    new = dict(zip(old, _free_ports(len(old)), strict=True))
    path.write_text(_PORT_RX.sub(lambda m: m.group(1) + str(new[int(m.group(2))]), text), encoding="utf-8")


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def rig_entry(
    directory: Path,
    name: str,
    *,
    firmware: str | dict[str, Any] = "2.0.0",
    defects: dict[str, list[dict[str, Any]]] | None = None,
    hardware_history: dict[str, Any] | None = None,
    ir: str = "itach",
    **overrides: Any,
) -> dict[str, Any]:
    """One emulated rig's YAML mapping on fresh loopback ports (see :func:`write_rig_file`)."""
    serial_p, rfc_p, ssh_p, itach_p, lirc_p, video_p, power_p = _free_ports(7)
    remote = directory / "remotes" / REMOTE.name
    if not remote.exists() and REMOTE.exists():
        remote.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REMOTE, remote)
    fw = {"version": firmware} if isinstance(firmware, str) else dict(firmware)
    itach_url = f"itach://127.0.0.1:{itach_p}/1:1"
    lirc_url = f"lirc://127.0.0.1:{lirc_p}"
    entry: dict[str, Any] = {
        "name": name,
        "model": "STB-4K-X1",
        "features": ["hdmi", "ir", "ssh"],
        "serial": {"url": f"socket://127.0.0.1:{serial_p}", "login": {"user": "root"}},
        "ssh": {
            "host": "127.0.0.1",
            "port": ssh_p,
            "user": "root",
            "key": str(directory / "keys" / "lab_ed25519"),
            "known_hosts": str(directory / "known_hosts"),
        },
        "ir": {"url": itach_url if ir == "itach" else lirc_url, "remote": str(remote)},
        "video": {"url": f"http://127.0.0.1:{video_p}/stream.mjpg", "width": 1280, "height": 720, "fps": 25},
        "power": {"url": f"http://127.0.0.1:{power_p}", "outlet": 1},
        "emulate": {
            "seed": 1000 + sum(map(ord, name)),
            "state_dir": str(directory / "state" / name),
            "serial_number": f"SN-{name.upper()}",
            "hardware_revision": "B2",
            "production_lot": "L2026-07",
            "rfc2217_url": f"rfc2217://127.0.0.1:{rfc_p}",
            ("lirc_url" if ir == "itach" else "itach_url"): lirc_url if ir == "itach" else itach_url,
            "firmware": fw,
            "trusted_keys": [str(directory / "keys" / "vendor_ed25519.pub")],
            "hardware_history": dict(hardware_history or {}),
            "defects": dict(defects or {}),
        },
    }
    rig_over = {k: v for k, v in overrides.items() if k in _RIG_KEYS}
    emu_over = {k: v for k, v in overrides.items() if k not in _RIG_KEYS}
    entry = _merge(entry, rig_over)
    entry["emulate"] = _merge(entry["emulate"], emu_over)
    return entry


def write_rig_file(
    directory: str | os.PathLike[str],
    names: tuple[str, ...] | list[str] = ("stb-a",),
    *,
    firmware: str | dict[str, Any] = "2.0.0",
    defects: dict[str, list[dict[str, Any]]] | None = None,
    hardware_history: dict[str, Any] | None = None,
    per_rig: dict[str, dict[str, Any]] | None = None,
    **overrides: Any,
) -> Path:
    """Write ``directory/rigs.yaml`` with emulated rigs on free loopback ports; returns its path.

    Keys, known_hosts, the remote file and each device's state live under ``directory``.
    ``overrides`` go into each rig: rig sections (``model``, ``serial``, ``ssh``, ``ir``,
    ``video``, ``power``, ``network``, ``features``) at rig level, anything else into
    ``emulate:`` (e.g. ``boot={"bootdelay": 1}``, ``console_password_env="PW"``); mappings merge.
    ``per_rig`` gives one rig its own keyword arguments, e.g. ``{"stb-b": {"firmware": "2.2.0"}}``.
    """
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    common = {"firmware": firmware, "defects": defects, "hardware_history": hardware_history, **overrides}
    rigs = [rig_entry(directory, n, **{**common, **(per_rig or {}).get(n, {})}) for n in names]
    path = directory / "rigs.yaml"
    path.write_text(_MARKER + yaml.safe_dump({"rigs": rigs}, sort_keys=False), encoding="utf-8")
    return path


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
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        threading.Thread(target=self._read, args=(self.proc.stdout, self.output), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True).start()
        deadline = time.monotonic() + self.ready_timeout
        with self._cond:
            while self._ready != set(self.rigs):
                if self.proc.poll() is not None:
                    self._cond.wait(0.2)  # let the readers catch the last lines
                    raise EmulatorFailed(f"stblab emulate exited with status {self.proc.returncode}: {self.reason()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    self.stop()
                    raise EmulatorFailed(f"stblab emulate not ready within {self.ready_timeout:.0f} s: {self.reason()}")
                self._cond.wait(min(left, 0.2))
        return self

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


__all__ = ["EmulatedLab", "EmulatorFailed", "free_port", "reassign_ports", "rig_entry", "write_rig_file"]
