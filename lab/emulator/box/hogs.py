"""Third-party software on the emulated box: background "apps" that hog CPU, memory or file
descriptors, or crash and get restarted in a loop (the shell's ``hog`` command).

Effects are bounded and realistic:

* ``cpu N`` -- N busy threads: each is runnable at once (4th field of /proc/loadavg), the load
  averages move towards them as the kernel's exponential averages do (1, 5, 15 min), and the UI
  competes for the CPU: every zap's banner appears ``UI_WORK_S`` later per busy thread;
* ``mem MB`` -- MB of anonymous memory: MemFree/MemAvailable drop by it; past the OOM limit the
  kernel's OOM killer kills the largest process (the hog), as on a box whose vendor sets third-party
  apps' ``oom_score_adj`` high;
* ``fds N`` -- N open files (capped at the per-process limit 1024): /proc/sys/fs/file-nr and
  ``ls /proc/PID/fd`` count them;
* ``crashloop SECONDS`` -- the app segfaults every SECONDS and the supervisor restarts it with a
  new pid (a userspace segfault line and a supervisor line on the console each time).

Everything belongs to the boot it started in: a reboot, a crash or power loss clears it.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab.emulator import bootlog
from lab.emulator.defects import OOM_FREE_KB

if TYPE_CHECKING:
    from lab.emulator.box import Box

APP = "/opt/apps/bin/app_hog"  # the third-party app's executable (what ps shows)
UI_WORK_S = 0.25  # extra banner latency per busy hog thread (the UI's share of the CPU shrinks)
MAX_CPU_THREADS = 8
MAX_FDS = 1024  # RLIMIT_NOFILE of the app
FILE_NR_BASE = 1_184  # open files of a freshly booted box
FILE_MAX = 98_304
BASE_RUNNABLE = 0.1  # what a healthy idle box contributes to the load average
APP_FDS = 64  # the UI app's open files
KINDS = ("cpu", "mem", "fds", "crashloop")
USAGE = "usage: hog cpu [THREADS] | hog mem MB | hog fds N | hog crashloop SECONDS | hog stop | hog status"


@dataclass
class Hog:
    """One running third-party app."""

    kind: str
    pid: int
    amount: float  # threads, kB, fds or seconds between crashes
    restarts: int = 0

    def command(self) -> str:
        arg = {"cpu": f"--cpu {int(self.amount)}", "mem": f"--mem {int(self.amount) // 1024}M"}.get(self.kind)
        if arg is None:
            arg = f"--fds {int(self.amount)}" if self.kind == "fds" else f"--crash-every {self.amount:g}"
        return f"{APP} {arg}"


class Hogs:
    """The third-party apps running on one box (per boot)."""

    def __init__(self, box: Box) -> None:
        self.box = box
        self._lock = threading.Lock()
        self.running: dict[str, Hog] = {}
        self._gen = -1
        self._next_pid = 1200
        self._load = [0.12, 0.08, 0.02]
        self._load_t = time.monotonic()

    # -- state of this boot ---------------------------------------------------------------------

    def _live(self) -> None:
        """Forget apps of an earlier boot (call with the lock held)."""
        if self._gen != self.box._gen:
            self._gen = self.box._gen
            self.running.clear()
            self._next_pid = 1200
            self._load = [0.12, 0.08, 0.02]
            self._load_t = time.monotonic()

    def _runnable(self) -> float:
        cpu = self.running.get("cpu")
        return BASE_RUNNABLE + (cpu.amount if cpu else 0.0)

    def _advance_load(self) -> None:
        """Bring the 1/5/15-minute exponential load averages up to now (lock held)."""
        now = time.monotonic()
        dt, n = now - self._load_t, self._runnable()
        decay = [math.exp(-dt / p) for p in (60, 300, 900)]
        self._load = [v * e + n * (1 - e) for v, e in zip(self._load, decay, strict=True)]
        self._load_t = now

    def _pid(self) -> int:
        self._next_pid += 7
        return self._next_pid

    # -- commands -------------------------------------------------------------------------------

    def start(self, kind: str, arg: str | None) -> str:
        """Start (or replace) the hog of ``kind``; returns the line to print. ValueError on bad input."""
        if kind not in KINDS:
            raise ValueError(f"hog: unknown kind '{kind}'")
        if self.box.phase != "running":
            raise ValueError("hog: box not running")
        try:
            value = float(arg) if arg is not None else (2.0 if kind == "cpu" else math.nan)
        except ValueError:
            raise ValueError(f"hog: {kind}: invalid number '{arg}'") from None
        if math.isnan(value) or value <= 0:
            raise ValueError(f"hog: {kind} needs a positive number")
        note = ""
        if kind == "cpu":
            value = float(min(MAX_CPU_THREADS, max(1, int(value))))
        elif kind == "mem":
            value = float(int(value) * 1024)
        elif kind == "fds":
            if value > MAX_FDS:
                note = f" (open: Too many open files after {MAX_FDS})"
            value = float(min(MAX_FDS, int(value)))
        else:
            value = max(0.2, value)
        with self._lock:
            self._live()
            self._advance_load()
            hog = Hog(kind, self._pid(), value)
            self.running[kind] = hog
            gen = self._gen
        if kind == "crashloop":
            threading.Thread(target=self._crashloop, args=(gen, hog), name="box-hog-crashloop", daemon=True).start()
        if kind == "mem":
            self._check_oom()
            self.box.defects.on_hog(self.mem_kb())
        return f"hog: started {kind} pid {hog.pid}: {hog.command()}{note}"

    def stop(self) -> list[str]:
        """Stop every hog; returns the kinds stopped."""
        with self._lock:
            self._live()
            self._advance_load()
            kinds = sorted(self.running)
            self.running.clear()
        return kinds

    def status(self) -> list[Hog]:
        with self._lock:
            self._live()
            return list(self.running.values())

    # -- what the box shows ---------------------------------------------------------------------

    def ui_delay(self) -> float:
        """Extra seconds the UI takes to draw a zap while hog threads compete for the CPU."""
        with self._lock:
            self._live()
            cpu = self.running.get("cpu")
            return UI_WORK_S * cpu.amount if cpu else 0.0

    def mem_kb(self) -> int:
        with self._lock:
            self._live()
            mem = self.running.get("mem")
            return int(mem.amount) if mem else 0

    def loadavg(self) -> str:
        """/proc/loadavg: load averages, runnable/total threads, last pid."""
        with self._lock:
            self._live()
            self._advance_load()
            l1, l5, l15 = self._load
            cpu = self.running.get("cpu")
            runnable = 1 + (int(cpu.amount) if cpu else 0)
            threads = 87 + sum(int(h.amount) if h.kind == "cpu" else 1 for h in self.running.values())
            return f"{l1:.2f} {l5:.2f} {l15:.2f} {runnable}/{threads} {self._next_pid}\n"

    def file_nr(self) -> str:
        with self._lock:
            self._live()
            fds = self.running.get("fds")
            return f"{FILE_NR_BASE + (int(fds.amount) if fds else 0)}\t0\t{FILE_MAX}\n"

    def fd_count(self, pid: int) -> int | None:
        """Open files of ``pid`` (the UI app or a hog); None for an unknown pid."""
        if pid == 412 and self.box.phase == "running":
            return APP_FDS
        with self._lock:
            self._live()
            for h in self.running.values():
                if h.pid == pid:
                    return int(h.amount) if h.kind == "fds" else 4
        return None

    def processes(self) -> list[tuple[int, str, int, str, str]]:
        """ps rows of the running hogs."""
        with self._lock:
            self._live()
            rows = []
            for h in self.running.values():
                vsz = 3_000 + (int(h.amount) if h.kind == "mem" else 0)
                rows.append((h.pid, "app", vsz, "R" if h.kind == "cpu" else "S", h.command()))
            return rows

    # -- what the hogs do -----------------------------------------------------------------------

    def _check_oom(self) -> None:
        """Past the OOM limit the OOM killer picks the largest process: the memory hog."""
        box = self.box
        _, free = box.memory()
        if free >= OOM_FREE_KB or box.phase != "running":
            return
        with self._lock:
            hog = self.running.pop("mem", None)
        if hog is None:
            return
        for line in bootlog.oom_lines(box.settings.total_memory_kb, int(hog.amount), name="app_hog", pid=hog.pid):
            box.kmsg(line)

    def _crashloop(self, gen: int, hog: Hog) -> None:
        box = self.box
        while True:
            time.sleep(hog.amount)
            with self._lock:  # printed under the lock: after ``hog stop`` returns, no more crashes
                if self._gen != box._gen or gen != self._gen or self.running.get("crashloop") is not hog:
                    return
                if box.phase != "running":
                    return
                old = hog.pid
                hog.pid = self._pid()
                hog.restarts += 1
                box.kmsg(
                    f"app_hog[{old}]: segfault at 0 ip b6f1c2a4 sp be9f4c10 error 4 in libthirdparty.so[b6f00000+40000]"
                )
                n = hog.restarts
                box.kmsg(f"app-supervisor: app_hog (pid {old}) killed by signal 11, restart {n} as {hog.pid}")


__all__ = ["APP", "KINDS", "UI_WORK_S", "USAGE", "Hog", "Hogs"]
