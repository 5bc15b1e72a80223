"""The Global Caché iTach blaster: keys as ``sendir`` carrier periods, waiting for ``completeir``.

See :mod:`lab.drivers.ir` for the driver that picks it from a rig's ``ir.url`` (``itach://``).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
import time
from collections.abc import Sequence

from lab.drivers.ir_socket import LineSocket
from lab.errors import InfraError, TestError
from lab.lircd import Remote

#: Global Caché iTach API error codes (``ERR_M:C,NNN``), from the iTach API specification.
ITACH_ERRORS = {
    "001": "invalid command (command not found)",
    "002": "invalid module address (does not exist)",
    "003": "invalid connector address (does not exist)",
    "004": "invalid ID value",
    "005": "invalid frequency value",
    "006": "invalid repeat value",
    "007": "invalid offset value",
    "008": "invalid pulse count",
    "009": "invalid pulse data",
    "010": "uneven amount of on/off statements",
    "011": "no carriage return found",
    "012": "repeat count exceeded",
    "013": "IR command sent to input connector",
    "014": "blaster command sent to non-blaster connector",
    "015": "no carriage return before buffer full",
    "016": "no carriage return",
    "017": "bad command syntax",
    "018": "sensor command sent to non-input connector",
    "019": "repeated IR transmission failure",
    "020": "above designated IR on/off pair limit",
    "021": "symbol odd boundary",
    "022": "undefined symbol",
    "023": "unknown option",
    "024": "invalid baud rate setting",
    "025": "invalid flow control setting",
    "026": "invalid parity setting",
    "027": "settings are locked",
}
#: The iTach accepts at most this many repeats in one ``sendir``, and this many on/off pairs.
ITACH_MAX_REPEAT = 50
ITACH_MAX_PAIRS = 260


class ItachBlaster:
    """Global Caché iTach TCP API (``sendir`` / ``completeir``) on one module:connector."""

    def __init__(
        self,
        host: str,
        port: int = 4998,
        module: int = 1,
        connector: int = 1,
        *,
        rig_name: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.addr = f"{module}:{connector}"
        self.timeout = timeout
        self._conn = LineSocket((host, port), rig_name=rig_name, what="iTach", timeout=timeout)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @staticmethod
    def to_periods(timings_us: Sequence[int], frequency: int) -> list[int]:
        """Microseconds -> carrier periods at ``frequency`` Hz (at least 1 each).

        >>> ItachBlaster.to_periods([9000, 4500], 38000)
        [342, 171]
        """
        return [max(1, round(t * frequency / 1_000_000)) for t in timings_us]

    def sendir_commands(self, remote: Remote, key: str, *, repeat: int, toggle: int) -> list[tuple[int, str]]:
        """The ``sendir`` lines (without ID) that send one press with ``repeat`` repeat frames.

        Returns ``(expected_duration_us, "FREQ,REPEAT,OFFSET,on,off,...")`` per command: the first
        holds the full frame then (for held keys) a repeat frame the iTach replays from its offset.
        """
        frames, gaps = remote.frames(key, repeat=repeat, toggle=toggle)
        freq = remote.frequency or 38000
        first = _with_gap(frames[0], gaps[0])
        out: list[tuple[int, str]] = []
        if len(frames) == 1:
            out.append((sum(first), self._body(freq, 1, 1, first)))
            return out
        rep = _with_gap(frames[1], gaps[-1] if len(frames) == 2 else gaps[1])
        left = len(frames) - 1
        count = min(left, ITACH_MAX_REPEAT)
        out.append((sum(first) + count * sum(rep), self._body(freq, count, len(first) + 1, first + rep)))
        left -= count
        while left > 0:
            count = min(left, ITACH_MAX_REPEAT)
            out.append((count * sum(rep), self._body(freq, count, 1, rep)))
            left -= count
        return out

    @staticmethod
    def _body(freq: int, repeat: int, offset: int, timings: list[int]) -> str:
        periods = ItachBlaster.to_periods(timings, freq)
        if len(periods) > 2 * ITACH_MAX_PAIRS:
            raise TestError(
                f"IR signal of {len(periods) // 2} on/off pairs is longer than an iTach sendir takes "
                f"({ITACH_MAX_PAIRS}); send fewer repeats in one press"
            )
        return f"{freq},{repeat},{offset}," + ",".join(str(p) for p in periods)

    def send(self, remote: Remote, key: str, *, repeat: int = 0, toggle: int = 0) -> None:
        for duration_us, body in self.sendir_commands(remote, key, repeat=repeat, toggle=toggle):
            self._sendir(body, duration_us / 1e6)

    def hold(self, remote: Remote, key: str, seconds: float, *, toggle: int = 0) -> None:
        frames, gaps = remote.frames(key, repeat=1, toggle=toggle)
        period_us = sum(frames[1]) + gaps[-1]
        first_us = sum(frames[0]) + gaps[0]
        repeats = max(0, math.ceil((seconds * 1e6 - first_us) / period_us))
        self.send(remote, key, repeat=repeats, toggle=toggle)

    def _sendir(self, body: str, duration: float) -> None:
        with self._lock:
            deadline = time.monotonic() + duration + self.timeout
            while True:
                cmd_id = next(self._ids) % 65536
                self._conn.send(f"sendir,{self.addr},{cmd_id},{body}\r".encode())
                reply = self._await(cmd_id, deadline)
                if reply == "busy":
                    if time.monotonic() > deadline:
                        raise self._conn._err("stayed busy (busyIR) until the timeout")  # noqa: SLF001
                    time.sleep(0.05)
                    continue
                return

    def _await(self, cmd_id: int, deadline: float) -> str:
        while True:
            line = self._conn.read_line(deadline, b"\r").strip()
            if not line:
                continue
            low = line.lower()
            if low.startswith("completeir"):
                parts = line.split(",")
                if len(parts) >= 3 and parts[2].strip() != str(cmd_id):
                    continue  # the completion of an earlier command that timed out
                return "ok"
            if low.startswith("busyir"):
                return "busy"
            if line.startswith("ERR") or low.startswith("unknowncommand"):
                code = line.rsplit(",", 1)[-1].strip() if "," in line else line.rsplit("_", 1)[-1]
                meaning = ITACH_ERRORS.get(code.zfill(3)[-3:], "")
                raise self._conn._err(f"rejected sendir: {line}" + (f" ({meaning})" if meaning else ""))  # noqa: SLF001
            # anything else (e.g. a sensor notification) is not an answer to us

    def version(self) -> str:
        """The unit's firmware version (``getversion``): proves the blaster answers."""
        with self._lock:
            self._conn.send(b"getversion\r")
            line = self._conn.read_line(time.monotonic() + self.timeout, b"\r").strip()
        if line.startswith("ERR") or not line:
            raise self._conn._err(f"getversion answered {line!r}")  # noqa: SLF001
        return line

    def check(self, remote: Remote) -> str:
        return f"iTach {self.addr} firmware {self.version()}"

    def stop(self) -> None:
        """Stop a repeating transmission (``stopir``)."""
        with self._lock:
            self._conn.send(f"stopir,{self.addr}\r".encode())
            with contextlib.suppress(InfraError):
                self._conn.read_line(time.monotonic() + self.timeout, b"\r")

    def close(self) -> None:
        self._conn.close()


def _with_gap(frame: list[int], gap: int) -> list[int]:
    return list(frame) + [gap]
