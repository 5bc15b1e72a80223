"""Leak trends: a slope with a confidence interval decides, not one sample."""

from __future__ import annotations

import random

import pytest
from scipy import stats

from lab.explore.trend import plot_png, t_quantile, trend


@pytest.mark.parametrize("df", [3, 5, 10, 30, 200])
def test_t_quantiles_agree_with_scipy(df: int) -> None:
    assert t_quantile(0.975, df) == pytest.approx(stats.t.ppf(0.975, df), rel=0.01)


def test_a_slow_leak_under_noise_is_found_with_its_interval() -> None:
    rng = random.Random(3)
    xs = [10.0 * i for i in range(30)]
    ys = [800_000 - 50.0 * x + rng.gauss(0, 2_000) for x in xs]  # 50 kB/s leak, +-2 MB noise
    t = trend(xs, ys)
    assert t.decreasing(tolerance=-10.0)
    ref = stats.linregress(xs, ys)
    half = stats.t.ppf(0.975, len(xs) - 2) * ref.stderr
    assert t.slope == pytest.approx(ref.slope)
    assert (t.low, t.high) == pytest.approx((ref.slope - half, ref.slope + half), rel=1e-3)
    assert abs(t.slope + 50.0) < 3 * ref.stderr  # the true leak rate is where the fit says


def test_noise_and_one_bad_sample_are_not_a_leak() -> None:
    rng = random.Random(4)
    xs = [10.0 * i for i in range(30)]
    ys = [800_000 + rng.gauss(0, 2_000) for _ in xs]
    ys[-1] -= 30_000  # one low sample at the end: a threshold on it would cry leak
    t = trend(xs, ys)
    assert not t.decreasing(tolerance=-10.0)


def test_bad_samples_are_refused_with_the_reason(tmp_path) -> None:
    with pytest.raises(ValueError, match="at least 3 samples"):
        trend([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="same time"):
        trend([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])
    t = trend([0.0, 1.0, 2.0, 3.0], [10.0, 8.0, 6.5, 4.0])
    plot_png(str(tmp_path / "leak.png"), [0.0, 1.0, 2.0, 3.0], [10.0, 8.0, 6.5, 4.0], t, title="MemAvailable")
    assert (tmp_path / "leak.png").stat().st_size > 1000
