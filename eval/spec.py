"""Benchmark specs: what a certificate measures and the rule that decides it.

A spec (YAML under ``configs/benchmarks/``) fixes the cell and its kwargs, the number of
episodes n, the level α, the pass/fail criteria (per-episode events with a required probability
p0), the continuous figures (a statistic of a per-episode figure, with an optional limit) and
the operating conditions whose buckets make the robustness table (:mod:`robocell.eval.conditions`).
It is parsed with :func:`robocell.schema.parse`, so unknown keys, missing keys and bad values
are refused with the field named. Its digest (:func:`spec_digest`) is what contracts cite.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from robocell.errors import RobocellError
from robocell.eval.conditions import (
    Condition,
    bucket_criteria,
    check_conditions,
    check_unique_names,
)
from robocell.eval.stats import episodes_needed
from robocell.schema import SchemaError, parse, to_dict
from robocell.util import canonical_json, load_yaml, resolve_packaged, sha256_bytes

#: Upper bounds of what a spec may ask for: a certification is hours of episodes, not years,
#: and the bootstrap holds resamples × episodes float64 values in memory at once.
MAX_EPISODES = 100_000
MAX_RESAMPLES = 100_000
MAX_BOOTSTRAP_VALUES = 50_000_000  # 400 MB of float64
MAX_CRITERIA = 64
MAX_CONDITIONS = 16
Comparison = Literal["<=", "<", ">=", ">", "=="]
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
}


@dataclass
class Criterion:
    """A pass/fail criterion: the event ``metric OP value`` must hold with probability ≥ p0.

    Attributes:
        name: short identifier shown in reports, e.g. ``success``.
        metric: key of the episode's ``episode_metrics``, e.g. ``success`` or ``cycle_time_s``.
        op: comparison of the metric with ``value``.
        value: the value the metric is compared with (in the metric's unit).
        p0: the required probability of the event; PASS iff the lower bound ≥ p0.
        if_missing: the metric's value when an episode does not report it (e.g. ``fault`` is
            only present when a fault happened: ``if_missing: 0``); ``null`` counts a missing
            metric as a failed event.
        description: what the criterion means, for the report.
    """

    name: str
    metric: str
    op: Comparison
    value: float
    p0: float
    if_missing: float | None = None
    description: str = ""

    def validate(self) -> None:
        """Range checks."""
        if not 0.0 < self.p0 < 1.0:
            raise SchemaError(f"criteria.{self.name}.p0", f"must be in (0, 1), got {self.p0}")

    def holds(self, metric_value: float | None) -> bool:
        """Whether one episode's metric satisfies the event (missing/NaN: see ``if_missing``)."""
        if metric_value is None:
            metric_value = self.if_missing
        if metric_value is None or not math.isfinite(metric_value):
            return False
        return COMPARISONS[self.op](metric_value, self.value)


@dataclass
class Figure:
    """A continuous figure: a statistic of a per-episode metric, with a bootstrap CI.

    Attributes:
        name: short identifier, e.g. ``energy_per_part_j``.
        metric: key of ``episode_metrics``; one part per episode, so per episode = per part.
        statistic: the statistic whose CI is reported and limited (mean, iqm or median).
        limit: optional bound on the statistic; with ``op``, the whole bootstrap CI must lie on
            the allowed side for the figure to pass. ``null``: reported only, never gating.
        op: ``<=`` (the CI's upper end ≤ limit) or ``>=`` (the CI's lower end ≥ limit).
        unit: unit of the metric, for the report.
    """

    name: str
    metric: str
    statistic: Literal["mean", "iqm", "median"] = "mean"
    limit: float | None = None
    op: Literal["<=", ">="] = "<="
    unit: str = ""


@dataclass
class Bootstrap:
    """Bootstrap settings of the continuous figures (fixed so anyone can recompute them)."""

    seed: int = 0
    resamples: int = 9999
    confidence: float = 0.95

    def validate(self) -> None:
        """Range checks."""
        if not 100 <= self.resamples <= MAX_RESAMPLES:
            raise SchemaError(
                "bootstrap.resamples", f"must be within 100..{MAX_RESAMPLES}, got {self.resamples}"
            )
        if not 0.5 <= self.confidence < 1.0:
            raise SchemaError("bootstrap.confidence", f"must be in [0.5, 1), got {self.confidence}")
        if self.seed < 0:
            raise SchemaError("bootstrap.seed", f"must be >= 0, got {self.seed}")


@dataclass
class BenchmarkSpec:
    """A pre-registered benchmark (see ``docs/CERTIFICATION.md``).

    Attributes:
        name: the benchmark's name, e.g. ``weld-acceptance``.
        env_id: the cell, e.g. ``robocell/WeldSeam-v1``.
        env_kwargs: keyword arguments of ``gymnasium.make`` for every episode.
        episodes: n, the number of episodes; every one counts, none is dropped.
        alpha: the family-wise error level α; each of the m criteria (the spec's criteria
            plus the criteria of its condition buckets) is tested at α/m.
        criteria: the pass/fail criteria (at least one).
        figures: continuous figures with bootstrap CIs.
        bootstrap: bootstrap seed, resamples and confidence.
        conditions: operating conditions with buckets: success and energy per bucket are
            recorded, and a bucket's criteria are tested on its episodes alone.
        decision_rule: ``all-criteria`` — PASSED iff every criterion's (and every bucket
            criterion's) Clopper–Pearson lower bound at α/m is ≥ its p0 and every limited
            figure's CI is within its limit.
        description: free text for the report.
    """

    name: str
    env_id: str
    episodes: int
    alpha: float
    criteria: list[Criterion]
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    bootstrap: Bootstrap = field(default_factory=Bootstrap)
    conditions: list[Condition] = field(default_factory=list)
    decision_rule: Literal["all-criteria"] = "all-criteria"
    description: str = ""

    @property
    def tests(self) -> int:
        """m: the number of pass/fail tests, the spec's criteria plus its bucket criteria."""
        return len(self.criteria) + len(bucket_criteria(self.conditions))

    @property
    def alpha_per_criterion(self) -> float:
        """α/m: the Bonferroni-corrected level of each criterion and bucket criterion."""
        return self.alpha / self.tests

    def validate(self) -> None:
        """Range checks, unique names, and that n episodes can reach every p0 at all."""
        if not 0.0 < self.alpha < 0.5:
            raise SchemaError("alpha", f"must be in (0, 0.5), got {self.alpha}")
        self._check_sizes()
        if not self.criteria:
            raise SchemaError("criteria", "at least one pass/fail criterion is needed")
        check_unique_names("criteria", [c.name for c in [*self.criteria, *self.figures]])
        check_conditions(self.conditions, [c.name for c in self.criteria])
        required = [(c.name, c.p0) for c in self.criteria]
        required += [
            (f"{b.criterion} in {c.name}={bucket.name}", b.p0)
            for c, bucket, b in bucket_criteria(self.conditions)
        ]
        for name, p0 in required:
            self._check_reachable(name, p0)

    def _check_sizes(self) -> None:
        if not 1 <= self.episodes <= MAX_EPISODES:
            raise SchemaError("episodes", f"must be within 1..{MAX_EPISODES}, got {self.episodes}")
        if self.episodes * self.bootstrap.resamples > MAX_BOOTSTRAP_VALUES:
            raise SchemaError(
                "bootstrap.resamples",
                f"{self.bootstrap.resamples} resamples of {self.episodes} episodes hold "
                f"{self.episodes * self.bootstrap.resamples} values, over {MAX_BOOTSTRAP_VALUES}",
            )
        sizes = {
            "criteria": (len(self.criteria), MAX_CRITERIA),
            "figures": (len(self.figures), MAX_CRITERIA),
            "conditions": (len(self.conditions), MAX_CONDITIONS),
        }
        for name, (size, limit) in sizes.items():
            if size > limit:
                raise SchemaError(name, f"{size} entries, at most {limit}")
        _check_episode_limit(self.env_id, self.env_kwargs)

    def _check_reachable(self, name: str, p0: float) -> None:
        # For a bucket criterion this is necessary only: its bucket holds some of the episodes.
        needed = episodes_needed(p0, self.alpha_per_criterion)
        if self.episodes < needed:
            raise SchemaError(
                "episodes",
                f"{self.episodes} episodes can never pass criterion {name!r} "
                f"(p0={p0} at α/m={self.alpha_per_criterion:.4g} needs >= {needed})",
            )


def _check_episode_limit(env_id: str, env_kwargs: dict[str, Any]) -> None:
    """A ``max_episode_steps`` kwarg must be one the cell runs: at most its registered limit."""
    if "max_episode_steps" not in env_kwargs:
        return
    value = env_kwargs["max_episode_steps"]
    where = "env_kwargs.max_episode_steps"
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SchemaError(where, f"must be a positive integer, got {value!r}")
    import gymnasium

    from robocell.envs import discover_cells

    discover_cells()  # the built-in cells and the installed ones
    try:
        limit = gymnasium.spec(env_id).max_episode_steps
    except gymnasium.error.Error:
        return  # an unknown cell is refused when it is made
    if limit is not None and value > limit:
        raise SchemaError(
            where,
            f"{value} is over {env_id}'s own limit of {limit} steps; the cell would stop at "
            f"{limit} while the certificate said {value}",
        )


def parse_spec(data: dict[str, Any], where: str = "") -> BenchmarkSpec:
    """A :class:`BenchmarkSpec` from plain data (e.g. the copy inside a certificate)."""
    return parse(BenchmarkSpec, data, where)


def load_spec(path: str | Path) -> BenchmarkSpec:
    """Read and validate a benchmark spec; a bare name (``weld``) means a packaged spec."""
    path = resolve_spec_path(path)
    try:
        return parse_spec(load_yaml(path))
    except SchemaError as exc:
        raise RobocellError(f"{path}: {exc}") from None


def resolve_spec_path(path: str | Path) -> Path:
    """``path`` if it exists, else the packaged ``configs/benchmarks/<path>.yaml``."""
    return resolve_packaged(path, "benchmarks")


def spec_data(spec: BenchmarkSpec) -> dict[str, Any]:
    """The spec as plain data, defaults filled in; a spec without conditions leaves the key out.

    Specs written before conditions existed therefore keep their data and digest.
    """
    data = to_dict(spec)
    if not data["conditions"]:
        del data["conditions"]
    return data


def spec_digest(spec: BenchmarkSpec) -> str:
    """sha256 hex of the canonical JSON of the spec's plain data (:func:`spec_data`)."""
    return sha256_bytes(canonical_json(spec_data(spec)))
