"""The userspace bridge: AF_PACKET sockets on the two middle veths of a rig's link.

Frames arriving from the lab side (``mid``) go to the box (``box_peer``) through the downstream
:class:`~lab.network.impair.engine.Impairment`; frames from the box go back through the upstream
one. One thread does both directions with a departure-time heap, so delay, jitter (with the
reordering it implies), rate and queue behave as on netem. Used on hosts without netem.

Example::

    bridge = UserspaceBridge(link.box_peer, link.mid_if, profile)
    bridge.start(); ...; bridge.stop(); bridge.counters()
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import select
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from lab.lifeline import tied
from lab.network.impair.engine import Impairment
from lab.network.profile import Profile

log = logging.getLogger("stblab.network.bridge")

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def _packet_socket(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sock.bind((ifname, 0))
    sock.setblocking(False)
    return sock


class UserspaceBridge:
    """Forward frames between ``box_if`` and ``lab_if`` applying ``profile`` in each direction.

    The forwarding loop runs in its own process (``python -m lab.network.impair.userspace``), so
    the test's own threads (headend, receiver, capture) cannot starve it through the GIL and skew
    the delays it produces. Control is a line protocol on its stdin/stdout ("counters", "stop").
    """

    def __init__(self, box_if: str, lab_if: str, profile: Profile, *, start: float | None = None) -> None:
        """``start``: monotonic time the profile's clock (outage windows) starts; None = when the
        bridge is ready."""
        self.box_if = box_if
        self.lab_if = lab_if
        self.profile = profile
        self.start_time = 0.0 if start is None else start
        self._proc: subprocess.Popen[str] | None = None
        self._last: dict[str, Any] = {}
        self._lock = threading.Lock()

    def start(self, timeout: float = 10.0) -> UserspaceBridge:
        argv = [sys.executable, "-m", "lab.network.impair.userspace", self.box_if, self.lab_if, repr(self.start_time)]
        self._proc = subprocess.Popen(
            tied(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(self.profile.model_dump(mode="json")) + "\n")
        self._proc.stdin.flush()
        line = self._readline(timeout)
        if line.startswith("ready "):
            self.start_time = float(line.split()[1])  # the profile's clock starts when frames flow
        else:
            err = self._proc.stderr.read() if self._proc.stderr and self._proc.poll() is not None else ""
            self.stop()
            raise OSError(f"userspace bridge failed to start: {(line or err).strip()[-500:]}")
        return self

    def _readline(self, timeout: float) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
        return self._proc.stdout.readline() if ready else ""

    def counters(self) -> dict[str, Any]:
        """Per-direction counts: received, sent, dropped_loss/outage/queue, duplicated, corrupted, ..."""
        with self._lock:
            proc = self._proc
            if proc is None or proc.poll() is not None or proc.stdin is None:
                return dict(self._last)
            try:
                proc.stdin.write("counters\n")
                proc.stdin.flush()
                line = self._readline(2.0)
                if line:
                    self._last = json.loads(line)
            except (OSError, ValueError):
                pass
            return dict(self._last)

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        self.counters()
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            assert proc.stdin is not None
            proc.stdin.write("stop\n")
            proc.stdin.flush()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=2)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            with contextlib.suppress(OSError, ValueError):
                if f:
                    f.close()


def _bridge_main(box_if: str, lab_if: str, start: float) -> int:
    """The forwarding loop (child process): select on both packet sockets and stdin."""
    ctl_in = sys.stdin
    try:
        profile = Profile.model_validate(json.loads(ctl_in.readline()))
        clean = Profile(seed=profile.seed)
        down = Impairment(profile if profile.direction in ("both", "downstream") else clean, "downstream", start)
        up = Impairment(profile if profile.direction in ("both", "upstream") else clean, "upstream", start)
        box = _packet_socket(box_if)
        lab = _packet_socket(lab_if)
    except Exception as exc:  # report why, the parent raises it
        print(f"{type(exc).__name__}: {exc}", flush=True)
        return 1
    if start <= 0:
        start = time.monotonic()
        down.start = up.start = start
    print(f"ready {start!r}", flush=True)
    send_errors = 0
    heap: list[tuple[float, int, socket.socket, bytes]] = []
    seq = itertools.count()
    route = {lab.fileno(): (down, box), box.fileno(): (up, lab)}
    ctl = ctl_in.fileno()
    socks: list[Any] = [box, lab, ctl]
    push = heapq.heappush
    monotonic = time.monotonic
    while True:
        now = monotonic()
        while heap and heap[0][0] <= now:
            _, _, out, data = heapq.heappop(heap)
            try:
                out.send(data)
            except OSError:
                send_errors += 1
        timeout = min(max(heap[0][0] - now, 0.0), 0.2) if heap else 0.2
        ready, _, _ = select.select(socks, [], [], timeout)
        now = monotonic()
        for sock in ready:
            if sock == ctl:
                cmd = ctl_in.readline().strip()
                if cmd in ("stop", ""):
                    return 0
                counts = {"downstream": dict(down.counters), "upstream": dict(up.counters), "send_errors": send_errors}
                print(json.dumps(counts), flush=True)
                continue
            eng, out = route[sock.fileno()]
            for _ in range(64):  # drain a burst before looking at the heap again
                try:
                    data, addr = sock.recvfrom(65535)
                except OSError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue
                for due, frame in eng.process(data, now):
                    if due <= now and not heap:
                        try:
                            out.send(frame)
                        except OSError:
                            send_errors += 1
                    else:
                        push(heap, (due, next(seq), out, frame))


__all__ = ["UserspaceBridge"]


if __name__ == "__main__":
    sys.exit(_bridge_main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
