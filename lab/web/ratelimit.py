"""Login rate limiting: a sliding window of failed attempts per user name and per client address.

After ``limit`` failures within ``window`` seconds, further attempts for that name or from that
address are refused (HTTP 429) until the oldest failure leaves the window. In memory, per process:
the app is one uvicorn process at a bench.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class LoginLimiter:
    """Counts failed logins by key (``name:...``, ``ip:...``) in a sliding window."""

    def __init__(self, limit: int = 5, window: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def retry_after(self, *keys: str) -> float:
        """Seconds until any of ``keys`` may try again (0 when allowed now)."""
        now = self._clock()
        with self._lock:
            waits = [self.window - (now - q[0]) for k in keys if len(q := self._recent(k, now)) >= self.limit]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        """Record one failed attempt under each key."""
        now = self._clock()
        with self._lock:
            for k in keys:
                self._recent(k, now).append(now)

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of a key after a good login."""
        with self._lock:
            for k in keys:
                self._fails.pop(k, None)
