"""Is a resource leaking? A slope with a confidence interval, not a threshold on one sample.

A soak samples a resource (MemAvailable, open file descriptors, CPU temperature) at intervals.
:func:`trend` fits a least-squares line and gives the slope's two-sided confidence interval from
Student's t distribution. A leak is a slope whose whole interval lies beyond ``tolerance`` (a
slope below it, for something that should not fall): one noisy sample or a slow start cannot make
a leak, and a real one is reported with how sure we are.

Example::

    t = trend(times_s, mem_available_kb)
    if t.decreasing(tolerance=-1.0):       # falling faster than 1 kB/s, at 95 %
        print(f"leak: {t.slope:.1f} kB/s [{t.low:.1f}, {t.high:.1f}]")
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile (Cornish-Fisher expansion about the normal; within 0.5 % for df >= 3)."""
    if df < 1:
        raise ValueError("degrees of freedom must be >= 1")
    z = NormalDist().inv_cdf(p)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


@dataclass(frozen=True)
class Trend:
    """A fitted line: ``slope`` per unit of x, its interval [low, high] at ``confidence``."""

    slope: float
    intercept: float
    low: float
    high: float
    n: int
    confidence: float

    def decreasing(self, tolerance: float = 0.0) -> bool:
        """True when the whole interval lies below ``tolerance`` (a leak of something that should hold)."""
        return self.high < tolerance

    def increasing(self, tolerance: float = 0.0) -> bool:
        """True when the whole interval lies above ``tolerance`` (e.g. growing file descriptors)."""
        return self.low > tolerance

    def describe(self, unit: str = "") -> str:
        """``-812.4 kB/s [-830.1, -794.7] (95 %, 24 samples)``."""
        u = f" {unit}" if unit else ""
        return (
            f"{self.slope:.4g}{u} [{self.low:.4g}, {self.high:.4g}] ({self.confidence * 100:.0f} %, {self.n} samples)"
        )


def trend(xs: Sequence[float], ys: Sequence[float], *, confidence: float = 0.95) -> Trend:
    """Least-squares slope of ``ys`` over ``xs`` with its confidence interval (needs 3+ samples)."""
    n = len(xs)
    if n != len(ys):
        raise ValueError(f"{n} x values but {len(ys)} y values")
    if n < 3:
        raise ValueError(f"a trend needs at least 3 samples, got {n}")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("all samples were taken at the same time")
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = my - slope * mx
    residual = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    se = math.sqrt(residual / (n - 2) / sxx)
    half = t_quantile(0.5 + confidence / 2, n - 2) * se
    return Trend(slope, intercept, slope - half, slope + half, n, confidence)


def plot_png(path: str, xs: Sequence[float], ys: Sequence[float], fit: Trend, *, title: str = "") -> None:
    """Draw the samples and the fitted line into a PNG (evidence for the report), with OpenCV."""
    import cv2
    import numpy as np

    w, h, m = 800, 400, 50
    img = np.full((h, w, 3), 255, np.uint8)
    x0, x1 = min(xs), max(xs)
    lo, hi = min(ys), max(ys)
    span_y = (hi - lo) or 1.0
    span_x = (x1 - x0) or 1.0

    def px(x: float, y: float) -> tuple[int, int]:
        return int(m + (x - x0) / span_x * (w - 2 * m)), int(h - m - (y - lo) / span_y * (h - 2 * m))

    cv2.rectangle(img, (m, m), (w - m, h - m), (200, 200, 200), 1)
    for x, y in zip(xs, ys, strict=True):
        cv2.circle(img, px(x, y), 3, (180, 80, 0), -1)
    cv2.line(img, px(x0, fit.intercept + fit.slope * x0), px(x1, fit.intercept + fit.slope * x1), (0, 0, 220), 2)
    label = f"{title} slope {fit.describe()}"
    cv2.putText(img, label[:90], (m, m - 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(path, img)
