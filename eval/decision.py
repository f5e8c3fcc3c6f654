"""The decision of a certificate: criteria counts and bounds, continuous figures, the action
gate, verdict.

Bucket criteria (a criterion required of one condition bucket's episodes alone) are tested
like the spec's own criteria, at the same α/m; the robustness table comes along
(:mod:`robocell.eval.robustness`).

:func:`evaluate` is a pure function of the spec and the per-episode metrics, so the certifier
and the verifier compute the same numbers from the same episode log. Besides the spec's
criteria, every certificate has the action gate (:class:`ActionGate`): a controller multiplies
the bundle's raw output by its scale, so one output outside the bundle's bounds on any
certified step fails the certificate, whatever the cell did with it (it clips).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from robocell.envs.rollout import CLIPPED_OBSERVATIONS, POLICY_FAULTS
from robocell.eval.conditions import bucket_criteria
from robocell.eval.robustness import ConditionResult, bucket_episodes, robustness_table
from robocell.eval.runner import INVALID_ACTIONS
from robocell.eval.spec import BenchmarkSpec, Criterion, Figure
from robocell.eval.stats import binomial_bounds, bootstrap_ci, iqm

PASS, FAIL, INFO = "PASS", "FAIL", "INFO"
PASSED, FAILED = "PASSED", "FAILED"
Metrics = dict[str, float | None]
#: Per-episode metric the runner records: steps whose action was non-finite, of the wrong
#: shape or outside the bundle's bounds.


@dataclass
class CriterionResult:
    """One pass/fail criterion's outcome: k of n, the bounds at α/m and the verdict."""

    name: str
    metric: str
    op: str
    value: float
    p0: float
    n: int
    k: int
    alpha: float
    clopper_pearson_lower: float
    wilson_lower: float
    verdict: str


@dataclass
class BucketCriterionResult(CriterionResult):
    """A criterion tested on one condition bucket's episodes: n and k count those alone."""

    condition: str
    bucket: str


@dataclass
class FigureResult:
    """One continuous figure: summary statistics, bootstrap CI of the stated statistic, verdict.

    ``n`` counts the episodes with a finite value; ``n_missing`` the others (a limited figure
    with missing values fails).
    """

    name: str
    metric: str
    unit: str
    statistic: str
    n: int
    n_missing: int
    mean: float | None
    iqm: float | None
    median: float | None
    std: float | None
    value: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    limit: float | None
    op: str
    verdict: str


@dataclass
class ActionGate:
    """Every certified step's action within the bundle's bounds, in every episode.

    An episode whose log lacks the count counts as one with invalid actions.
    """

    metric: str
    n: int
    episodes_with_invalid_actions: int
    invalid_steps: int
    verdict: str
    episodes_with_faults: int = 0
    """Episodes with a faulted (non-finite) observation: each is a failed episode."""
    faulted_steps: int = 0
    """Steps whose observation the bundle's guard faulted, over all episodes."""
    clipped_observations: int = 0
    """Observations the guard clipped to the manifest's ranges, over all episodes."""


@dataclass
class Evaluation:
    """All results and the overall verdict (``PASSED``/``FAILED``)."""

    criteria: list[CriterionResult]
    figures: list[FigureResult]
    bucket_criteria: list[BucketCriterionResult]
    robustness: list[ConditionResult]
    actions: ActionGate
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the certificate's predicate."""
        return asdict(self)


def evaluate(spec: BenchmarkSpec, episodes: Sequence[Metrics]) -> Evaluation:
    """Apply the spec's decision rule to the metrics of all its episodes."""
    if len(episodes) != spec.episodes:
        raise ValueError(f"the spec needs {spec.episodes} episodes, got {len(episodes)}")
    criteria = [CriterionResult(**_test(spec, c, c.p0, episodes)) for c in spec.criteria]
    figures = [_figure(spec, f, episodes) for f in spec.figures]
    in_buckets = _bucket_criteria(spec, episodes)
    actions = action_gate(episodes)
    passed = (
        all(c.verdict == PASS for c in [*criteria, *in_buckets])
        and all(f.verdict != FAIL for f in figures)
        and actions.verdict == PASS
    )
    return Evaluation(
        criteria,
        figures,
        in_buckets,
        robustness_table(spec, episodes),
        actions,
        PASSED if passed else FAILED,
    )


def action_gate(episodes: Sequence[Metrics]) -> ActionGate:
    """PASS when no episode has a step with an invalid action (a missing count is invalid)."""
    counts = [m.get(INVALID_ACTIONS) for m in episodes]
    bad = [c for c in counts if c is None or not math.isfinite(c) or c != 0]
    steps = sum(int(c) for c in bad if c is not None and math.isfinite(c))
    faults = [_count(m, POLICY_FAULTS) for m in episodes]
    return ActionGate(
        metric=INVALID_ACTIONS,
        n=len(episodes),
        episodes_with_invalid_actions=len(bad),
        invalid_steps=steps,
        verdict=FAIL if bad else PASS,
        episodes_with_faults=sum(count > 0 for count in faults),
        faulted_steps=sum(faults),
        clipped_observations=sum(_count(m, CLIPPED_OBSERVATIONS) for m in episodes),
    )


def _count(metrics: Metrics, key: str) -> int:
    value = metrics.get(key)
    return int(value) if value is not None and math.isfinite(value) else 0


def _test(
    spec: BenchmarkSpec, criterion: Criterion, p0: float, episodes: Sequence[Metrics]
) -> dict[str, Any]:
    """k of n episodes satisfying the criterion's event, its bounds at α/m and the verdict."""
    n = len(episodes)
    k = sum(criterion.holds(m.get(criterion.metric)) for m in episodes)
    alpha = spec.alpha_per_criterion
    bound, wilson = binomial_bounds(k, n, alpha)
    return {
        "name": criterion.name,
        "metric": criterion.metric,
        "op": criterion.op,
        "value": criterion.value,
        "p0": p0,
        "n": n,
        "k": k,
        "alpha": alpha,
        "clopper_pearson_lower": bound,
        "wilson_lower": wilson,
        "verdict": PASS if bound >= p0 else FAIL,
    }


def _bucket_criteria(
    spec: BenchmarkSpec, episodes: Sequence[Metrics]
) -> list[BucketCriterionResult]:
    """Each bucket criterion, tested on its bucket's episodes (an empty bucket fails)."""
    criteria = {c.name: c for c in spec.criteria}
    results = []
    for condition, bucket, required in bucket_criteria(spec.conditions):
        members = bucket_episodes(condition, bucket, episodes)
        test = _test(spec, criteria[required.criterion], required.p0, members)
        test["name"] = f"{required.criterion}[{condition.name}={bucket.name}]"
        results.append(BucketCriterionResult(**test, condition=condition.name, bucket=bucket.name))
    return results


def _figure(spec: BenchmarkSpec, figure: Figure, episodes: Sequence[Metrics]) -> FigureResult:
    raw = [m.get(figure.metric) for m in episodes]
    values = np.array([v for v in raw if v is not None and math.isfinite(v)], dtype=float)
    missing = len(raw) - values.size
    stats: dict[str, float | None] = dict.fromkeys(
        ("mean", "iqm", "median", "std", "value", "ci_low", "ci_high")
    )
    if values.size:
        boot = spec.bootstrap
        stats["mean"], stats["iqm"] = float(values.mean()), iqm(values)
        stats["median"], stats["std"] = float(np.median(values)), float(values.std(ddof=0))
        stats["value"] = stats[figure.statistic]
        stats["ci_low"], stats["ci_high"] = bootstrap_ci(
            values, figure.statistic, boot.confidence, boot.seed, boot.resamples
        )
    return FigureResult(
        name=figure.name,
        metric=figure.metric,
        unit=figure.unit,
        statistic=figure.statistic,
        n=int(values.size),
        n_missing=missing,
        confidence=spec.bootstrap.confidence,
        limit=figure.limit,
        op=figure.op,
        verdict=_figure_verdict(figure, missing, stats["ci_low"], stats["ci_high"]),
        **stats,
    )


def _figure_verdict(figure: Figure, missing: int, low: float | None, high: float | None) -> str:
    if figure.limit is None:
        return INFO
    if missing or low is None or high is None:
        return FAIL
    if figure.op == "<=":
        return PASS if high <= figure.limit else FAIL
    return PASS if low >= figure.limit else FAIL
