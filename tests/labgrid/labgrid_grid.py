"""A real labgrid lab on loopback for tests and benchmarks: coordinator, exporters, places.

``Grid`` starts ``labgrid-coordinator`` on a free loopback port in its own folder and one
``labgrid-exporter -n HOST`` per lab host, each exporting the resource groups that
``stblab labgrid exporter-config`` writes for its rigs; then ``sync`` makes one place per rig.
Everything is a real process talking gRPC; waits are bounded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lab.emulator.testing import free_port
from lab.labgrid.coordinator import CoordinatorLink
from lab.labgrid.exporter_config import write_exporter_config
from lab.labgrid.sync import sync_places
from lab.lifeline import tied
from lab.rig import Rig


def _bin(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).with_name(name))
    return found


def wait_for(what: str, pred: Callable[[], object], timeout: float = 20.0, every: float = 0.1) -> object:
    """Poll ``pred`` until truthy; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = pred()
        except Exception as exc:  # noqa: BLE001 - keep polling; show the last failure
            last = exc
        else:
            if last:
                return last
        time.sleep(every)  # polling interval of a bounded wait, not synchronisation by sleeping
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")


class Proc:
    """A started program with its output collected in memory (read by a thread)."""

    def __init__(self, argv: list[str], cwd: Path, name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            tied(argv),  # a killed pytest takes its coordinator and exporters along
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def saw(self, text: str) -> bool:
        return any(text in ln for ln in list(self.lines))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        self.kill(signal.SIGKILL)


class Grid:
    """A coordinator and exporters; ``hosts`` maps lab host name -> the rigs cabled to it."""

    def __init__(self, root: Path, hosts: dict[str, list[Rig]], *, pool: str = "ci") -> None:
        self.root = root
        self.hosts = hosts
        self.pool = pool
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.coordinator: Proc | None = None
        self.exporters: dict[str, Proc] = {}

    def start(self) -> Grid:
        self.start_coordinator()
        for host in self.hosts:
            self.start_exporter(host)
        with self.link("stblab-test-admin") as link:
            for host, rigs in self.hosts.items():
                sync_places(link, rigs, host=host, pool=self.pool)
        return self

    def start_coordinator(self) -> None:
        cdir = self.root / "coordinator"
        cdir.mkdir(parents=True, exist_ok=True)
        self.coordinator = Proc([_bin("labgrid-coordinator"), "-l", self.address], cdir, "coordinator")
        wait_for("labgrid-coordinator to listen", lambda: self.coordinator.saw("listening on"), 30)

    def start_exporter(self, host: str) -> None:
        config = write_exporter_config(self.hosts[host], self.root / f"exporter-{host}.yaml")
        proc = Proc([_bin("labgrid-exporter"), "-c", self.address, "-n", host, str(config)], self.root, host)
        self.exporters[host] = proc
        names = {r.name for r in self.hosts[host]}

        def published() -> bool:
            with self.link("stblab-test-admin") as link:
                groups = {r.group for r in link.resources() if r.exporter == host and r.avail}
            return names <= groups

        wait_for(f"exporter {host} to publish {sorted(names)}", published, 30, every=0.2)

    def restart_coordinator(self) -> None:
        """Stop and start the coordinator, as an admin would: after it saved its places (it saves
        every 15 s), so the places survive and only the locks are forgotten."""
        assert self.coordinator is not None
        names = [r.name for rigs in self.hosts.values() for r in rigs]
        saved = self.root / "coordinator" / "places.yaml"
        wait_for(
            "the coordinator to save its places",
            lambda: saved.exists() and all(f"{n}:" in saved.read_text() for n in names),
            30,
            every=0.5,
        )
        self.coordinator.stop()
        self.start_coordinator()

    def link(self, user: str) -> CoordinatorLink:
        return CoordinatorLink(self.address, user=user, timeout=5)

    def url(self, **query: object) -> str:
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return f"labgrid://{self.address}/?{q}"

    def stop(self) -> None:
        for proc in self.exporters.values():
            proc.stop()
        if self.coordinator is not None:
            self.coordinator.stop()

    def __enter__(self) -> Grid:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
