"""Loopback ports for emulated rigs: free ports below the ephemeral range, reassigned when taken."""

from __future__ import annotations

import random
import re
import socket
import threading
from collections import deque
from pathlib import Path


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
