"""The robustness table: success and energy per bucket of each operating condition.

For every condition of the spec and every bucket of it, the episodes whose condition value
falls into the bucket are counted: how many succeeded (the cells' ``success`` metric, 1 for a
success) with a two-sided Wilson score interval at the spec's ``bootstrap.confidence``, and
their mean energy (``energy_j``, J per episode). The table is for display and is signed with
the rest; the bucket *criteria* that gate the verdict are in :mod:`robocell.eval.decision`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from robocell.eval.conditions import Bucket, Condition
from robocell.eval.spec import BenchmarkSpec
from robocell.eval.stats import wilson_interval

SUCCESS_METRIC = "success"
ENERGY_METRIC = "energy_j"
Metrics = dict[str, float | None]


@dataclass
class BucketResult:
    """One bucket's row: episodes, successes with their Wilson interval, mean energy (J).

    ``success_rate`` and ``energy_mean_j`` are ``None`` for an empty bucket (and the energy
    also when no episode of the bucket reported a finite energy).
    """

    name: str
    rule: str
    n: int
    successes: int
    success_rate: float | None
    wilson_low: float
    wilson_high: float
    energy_mean_j: float | None


@dataclass
class ConditionResult:
    """One condition's table: its buckets, and the episodes that fell into none of them."""

    name: str
    metric: str
    unit: str
    confidence: float
    outside: int
    buckets: list[BucketResult]


def bucket_episodes(
    condition: Condition, bucket: Bucket, episodes: Sequence[Metrics]
) -> list[Metrics]:
    """The episodes whose value of the condition's metric lies in the bucket, in order."""
    return [m for m in episodes if bucket.contains(m.get(condition.metric))]


def robustness_table(spec: BenchmarkSpec, episodes: Sequence[Metrics]) -> list[ConditionResult]:
    """The robustness table of every condition of the spec."""
    return [_condition(spec, condition, episodes) for condition in spec.conditions]


def is_success(metrics: Metrics) -> bool:
    """Whether an episode succeeded (``success`` reported and ≥ 1)."""
    value = metrics.get(SUCCESS_METRIC)
    return value is not None and math.isfinite(value) and value >= 1.0


def _condition(
    spec: BenchmarkSpec, condition: Condition, episodes: Sequence[Metrics]
) -> ConditionResult:
    confidence = spec.bootstrap.confidence
    rows = [_bucket(condition, b, episodes, confidence) for b in condition.buckets]
    inside = sum(row.n for row in rows)  # buckets do not overlap
    return ConditionResult(
        name=condition.name,
        metric=condition.metric,
        unit=condition.unit,
        confidence=confidence,
        outside=len(episodes) - inside,
        buckets=rows,
    )


def _bucket(
    condition: Condition, bucket: Bucket, episodes: Sequence[Metrics], confidence: float
) -> BucketResult:
    members = bucket_episodes(condition, bucket, episodes)
    n = len(members)
    successes = sum(map(is_success, members))
    low, high = wilson_interval(successes, n, confidence)
    energy = [m.get(ENERGY_METRIC) for m in members]
    finite = [e for e in energy if e is not None and math.isfinite(e)]
    return BucketResult(
        name=bucket.name,
        rule=bucket.rule(),
        n=n,
        successes=successes,
        success_rate=successes / n if n else None,
        wilson_low=low,
        wilson_high=high,
        energy_mean_j=math.fsum(finite) / len(finite) if finite else None,
    )
