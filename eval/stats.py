"""Statistics of certification and training: exact binomial bounds, Wilson bounds, bootstrap CIs,
IQM and its stratified-bootstrap interval over training seeds.

The acceptance gate uses the one-sided Clopper–Pearson ("exact") lower bound: the smallest
success probability p that is not rejected at level α when k of n episodes pass, i.e. the α
quantile of Beta(k, n − k + 1) (0 when k = 0). It never overstates p; the Wilson bound is
reported next to it for display only. Distributions come from scipy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from scipy import stats as sps

StatisticName = Literal["mean", "iqm", "median"]


def clopper_pearson_lower(k: int, n: int, alpha: float) -> float:
    """One-sided (1 − α) Clopper–Pearson lower bound on p after k successes in n trials."""
    _check_counts(k, n, alpha)
    if k == 0:
        return 0.0
    return float(sps.beta.ppf(alpha, k, n - k + 1))


def wilson_lower(k: int, n: int, alpha: float) -> float:
    """One-sided (1 − α) Wilson score lower bound on p after k successes in n trials."""
    _check_counts(k, n, alpha)
    return _wilson(k, n, float(sps.norm.ppf(1.0 - alpha)))[0]


def wilson_interval(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Two-sided Wilson score interval on p at ``confidence``; (0, 1) when n = 0."""
    if n == 0:
        return 0.0, 1.0
    _check_counts(k, n, 1.0 - confidence)
    return _wilson(k, n, float(sps.norm.ppf(0.5 + confidence / 2.0)))


def binomial_bounds(k: int, n: int, alpha: float) -> tuple[float, float]:
    """Clopper–Pearson and Wilson lower bounds at level α; both 0 when n = 0 (no evidence)."""
    if n == 0:
        return 0.0, 0.0
    return clopper_pearson_lower(k, n, alpha), wilson_lower(k, n, alpha)


def episodes_needed(p0: float, alpha: float) -> int:
    """Fewest episodes for which n passes out of n give a Clopper–Pearson bound ≥ ``p0``.

    With k = n the bound is α^(1/n), so n ≥ ln α / ln p0 (59 for p0 = 0.95, α = 0.05).
    """
    if not 0 < p0 < 1 or not 0 < alpha < 1:
        raise ValueError(f"need 0 < p0 < 1 and 0 < alpha < 1, got p0={p0}, alpha={alpha}")
    return int(np.ceil(np.log(alpha) / np.log(p0) - 1e-12))


def iqm(values: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50 % (25 % trimmed from each end)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("iqm of no values")
    return float(sps.trim_mean(data, 0.25))


def statistic_function(statistic: StatisticName | Callable) -> Callable[..., np.ndarray]:
    """A vectorised statistic (taking ``axis``) by name, or the callable itself."""
    if callable(statistic):
        return statistic
    functions = {
        "mean": np.mean,
        "median": np.median,
        "iqm": lambda x, axis=-1: sps.trim_mean(x, 0.25, axis=axis),
    }
    if statistic not in functions:
        raise ValueError(f"unknown statistic {statistic!r} (known: {', '.join(functions)})")
    return functions[statistic]


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: StatisticName | Callable = "mean",
    confidence: float = 0.95,
    seed: int = 0,
    resamples: int = 9999,
) -> tuple[float, float]:
    """Two-sided percentile bootstrap confidence interval of ``statistic``, reproducible by seed.

    ``statistic`` is ``"mean"``, ``"iqm"``, ``"median"`` or a vectorised callable taking
    ``axis``. The same values, statistic, confidence, seed and resamples give the same interval.
    """
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("bootstrap of no values")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if np.all(data == data[0]):
        return float(data[0]), float(data[0])  # every resample is the same: no spread
    result = sps.bootstrap(
        (data,),
        statistic_function(statistic),
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    p_hat = k / n
    centre = p_hat + z * z / (2 * n)
    spread = z * np.sqrt(p_hat * (1 - p_hat) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return float(max(0.0, (centre - spread) / scale)), float(min(1.0, (centre + spread) / scale))


def stratified_iqm(
    strata: Sequence[Sequence[float]],
    confidence: float = 0.95,
    seed: int = 0,
    resamples: int = 2000,
) -> tuple[float, float, float]:
    """IQM over strata of the stratum means, with its stratified-bootstrap percentile CI.

    rliable's interval estimate (Agarwal et al., 2021), in numpy: a stratum is one training
    seed's held-out episodes. Each resample draws every stratum's episodes with replacement
    *within* that stratum (each keeps its size), takes each stratum's mean and the IQM over the
    strata; the interval is the percentile interval of those IQMs. Returns
    ``(iqm, ci_low, ci_high)``; the same strata, confidence, seed and resamples give the same
    interval.
    """
    groups = [np.asarray(values, dtype=float) for values in strata]
    if not groups or any(group.size == 0 for group in groups):
        raise ValueError("stratified bootstrap needs at least one stratum, none of them empty")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    point = iqm([group.mean() for group in groups])
    rng = np.random.default_rng(seed)
    means = np.stack(
        [g[rng.integers(0, g.size, (resamples, g.size))].mean(axis=1) for g in groups], axis=1
    )
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(sps.trim_mean(means, 0.25, axis=1), [tail, 100 - tail])
    return point, float(low), float(high)


def _check_counts(k: int, n: int, alpha: float) -> None:
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
