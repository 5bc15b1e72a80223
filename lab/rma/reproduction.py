"""Reproduction as a measurement: k hits out of n reruns, with syzbot's stopping rule.

Rerun the failing test with the same seed, firmware and network profile (same rig, and another rig
of the model when one is free) until the policy says done: at most ``max_runs`` (10) reruns, stop
early at ``stop_after_hits`` (3) hits; a rate below ``min_rate`` (0.15) is "not reproducible".
The failure that started it is not counted: only reruns are.

Example::

    policy = ReproductionPolicy()
    while not policy.done:
        policy.record(rerun_failed())
    store.record_reproduction(fault_id, policy, rig="stb-a", seed=7)
    print(policy.verdict, f"{policy.hits}/{policy.runs}")
"""

from __future__ import annotations

from dataclasses import dataclass, field

REPRODUCIBLE = "reproducible"
NOT_REPRODUCIBLE = "not_reproducible"
PENDING = "pending"


@dataclass
class ReproductionPolicy:
    """Drives the reruns of one fault: ``record(hit)`` after each, stop when ``done``."""

    max_runs: int = 10
    stop_after_hits: int = 3
    min_rate: float = 0.15
    results: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.max_runs < 1 or self.stop_after_hits < 1 or not 0 <= self.min_rate <= 1:
            raise ValueError("max_runs and stop_after_hits must be >= 1 and min_rate within 0..1")

    def record(self, hit: bool) -> None:
        """Count one rerun: ``hit`` is True when the fault appeared again."""
        if self.done:
            raise ValueError(f"reproduction already done after {self.runs} runs ({self.hits} hits)")
        self.results.append(bool(hit))

    @property
    def runs(self) -> int:
        return len(self.results)

    @property
    def hits(self) -> int:
        return sum(self.results)

    @property
    def rate(self) -> float:
        """Hits per run so far (0.0 before the first run)."""
        return self.hits / self.runs if self.runs else 0.0

    @property
    def done(self) -> bool:
        return self.hits >= self.stop_after_hits or self.runs >= self.max_runs

    @property
    def verdict(self) -> str:
        """``pending`` until done, then ``reproducible`` or ``not_reproducible`` (rate below min_rate)."""
        if not self.done:
            return PENDING
        return REPRODUCIBLE if self.rate >= self.min_rate else NOT_REPRODUCIBLE

    def as_record(self) -> dict[str, object]:
        return {"runs": self.runs, "hits": self.hits, "rate": round(self.rate, 4), "verdict": self.verdict}
