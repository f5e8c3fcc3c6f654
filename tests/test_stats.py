"""Statistics of certification against known values and independent identities."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from robocell.eval.stats import (
    bootstrap_ci,
    clopper_pearson_lower,
    episodes_needed,
    iqm,
    wilson_lower,
)


@pytest.mark.parametrize(
    ("k", "n", "alpha", "expected"),
    [
        # Two-sided 95 % Clopper-Pearson intervals (= one-sided at 0.025), textbook values.
        (7, 10, 0.025, 0.3475),
        (0, 10, 0.025, 0.0),
        (10, 10, 0.025, 0.6915),
        (50, 100, 0.025, 0.3983),
        # Zero failures: the bound is alpha ** (1 / n), 0.9505 for the classic 59 episodes.
        (59, 59, 0.05, 0.9505),
    ],
)
def test_clopper_pearson_known_values(k: int, n: int, alpha: float, expected: float) -> None:
    assert clopper_pearson_lower(k, n, alpha) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(("k", "n"), [(1, 5), (3, 20), (17, 20), (95, 100), (290, 300)])
def test_clopper_pearson_is_exact_tail_bound(k: int, n: int) -> None:
    # At the bound p_L, seeing k or more successes has probability exactly alpha.
    alpha = 0.05
    p_low = clopper_pearson_lower(k, n, alpha)
    assert sps.binom.sf(k - 1, n, p_low) == pytest.approx(alpha, rel=1e-7)


def test_clopper_pearson_all_successes_closed_form() -> None:
    for n in (1, 10, 59, 300):
        assert clopper_pearson_lower(n, n, 0.05) == pytest.approx(0.05 ** (1 / n), rel=1e-10)


def test_clopper_pearson_is_conservative_compared_to_wilson() -> None:
    for k in range(1, 20):
        assert clopper_pearson_lower(k, 20, 0.05) <= wilson_lower(k, 20, 0.05) + 1e-12


def test_clopper_pearson_rejects_bad_counts() -> None:
    with pytest.raises(ValueError):
        clopper_pearson_lower(11, 10, 0.05)
    with pytest.raises(ValueError):
        clopper_pearson_lower(5, 10, 0.0)


@pytest.mark.parametrize(
    ("k", "n", "alpha", "expected"),
    [
        (7, 10, 0.025, 0.3968),  # Wilson 95 % two-sided interval of 7/10 is [0.3968, 0.8922]
        (0, 10, 0.025, 0.0),
        (50, 100, 0.025, 0.4038),
    ],
)
def test_wilson_known_values(k: int, n: int, alpha: float, expected: float) -> None:
    assert wilson_lower(k, n, alpha) == pytest.approx(expected, abs=1e-4)


def test_episodes_needed_matches_the_formula() -> None:
    assert episodes_needed(0.95, 0.05) == 59
    assert episodes_needed(0.99, 0.05) == 299
    assert episodes_needed(0.95, 0.05 / 3) == 80
    n = episodes_needed(0.9, 0.01)
    assert clopper_pearson_lower(n, n, 0.01) >= 0.9 > clopper_pearson_lower(n - 1, n - 1, 0.01)


def test_iqm_known_values() -> None:
    assert iqm(np.arange(1, 9)) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert iqm([1.0, 2.0, 3.0, 4.0, 1000.0, -1000.0, 2.5, 3.5]) == pytest.approx(2.75)
    with pytest.raises(ValueError):
        iqm([])


def test_bootstrap_is_reproducible_by_seed() -> None:
    values = np.random.default_rng(3).exponential(2.0, 50)
    first = bootstrap_ci(values, "mean", 0.95, seed=7, resamples=2000)
    assert bootstrap_ci(values, "mean", 0.95, seed=7, resamples=2000) == first
    assert bootstrap_ci(values, "mean", 0.95, seed=8, resamples=2000) != first


def test_bootstrap_mean_matches_normal_theory_for_large_samples() -> None:
    values = np.random.default_rng(0).normal(10.0, 2.0, 2000)
    low, high = bootstrap_ci(values, "mean", 0.95, seed=0, resamples=4000)
    half_width = 1.959964 * values.std(ddof=1) / math.sqrt(values.size)
    assert low == pytest.approx(values.mean() - half_width, abs=0.01)
    assert high == pytest.approx(values.mean() + half_width, abs=0.01)


def test_bootstrap_iqm_interval_brackets_the_iqm_and_ignores_outliers() -> None:
    values = np.r_[np.random.default_rng(1).normal(5.0, 0.1, 40), 1e6]
    low, high = bootstrap_ci(values, "iqm", 0.95, seed=0, resamples=2000)
    assert low <= iqm(values) <= high
    assert high < 6.0


def test_bootstrap_of_constant_values_is_a_point() -> None:
    assert bootstrap_ci([3.0] * 10, "median", 0.9, seed=0) == (3.0, 3.0)
