"""The search space of ``robocell sweep``: a YAML file, one typed schema, checked against a config.

Example (``configs/sweeps/peg.yaml``)::

    params:                                   # dotted config keys, as for --set
      hyperparams.learning_rate: {distribution: loguniform, low: 1.0e-5, high: 1.0e-3}
      hyperparams.n_epochs: {distribution: int, low: 3, high: 15}
      hyperparams.clip_range: {distribution: choice, values: [0.1, 0.2, 0.3]}
    score: {energy_penalty: 0.02, energy_scale_j: 150.0}
    asha: {grace_period_steps: 50000, reduction_factor: 3}
    sampler_seed: 0

Each trial's score at an evaluation is ``success_rate − energy_penalty · energy_j /
energy_scale_j`` (``energy_j``: mean energy per evaluation episode; no energy term for a cell
without an energy meter). Success comes first: with the scale near a good policy's energy and
a penalty of 0.02, one more successful episode out of ten (+0.1) outweighs up to five times
the reference energy. Unknown keys and bad values are refused naming the field; every searched
key must give a valid training config at each end of its range (checked before any trial).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from robocell.errors import RobocellError
from robocell.schema import SchemaError, parse, to_dict
from robocell.train.config import RunConfig, config_from_dict, set_dotted
from robocell.util import load_yaml, resolve_packaged


@dataclass
class ParamSpec:
    """One searched config value and its distribution."""

    distribution: Literal["uniform", "loguniform", "int", "choice"]
    """``uniform`` / ``loguniform`` floats in [low, high], ``int`` in [low, high], ``choice``."""
    low: float | None = None
    """Lower end (uniform, loguniform > 0, int)."""
    high: float | None = None
    """Upper end, inclusive."""
    values: list[Any] | None = None
    """The choices of ``choice``: numbers, strings or booleans."""

    def check(self) -> None:
        """Each distribution has exactly the fields it needs (field names relative)."""
        if self.distribution == "choice":
            if self.low is not None or self.high is not None or not self.values:
                raise SchemaError("values", "choice takes a non-empty values list, no low/high")
            if not all(isinstance(v, int | float | str | bool) for v in self.values):
                raise SchemaError("values", "choices must be numbers, strings or booleans")
            return
        if self.low is None or self.high is None or self.values is not None:
            raise SchemaError("low", f"{self.distribution} takes low and high, no values")
        if not self.low < self.high:
            raise SchemaError("high", f"must be > low ({self.low}), got {self.high}")
        if self.distribution == "loguniform" and self.low <= 0:
            raise SchemaError("low", f"loguniform needs low > 0, got {self.low}")
        for name in ("low", "high"):
            value = getattr(self, name)
            if self.distribution == "int" and value != int(value):
                raise SchemaError(name, f"int needs integer ends, got {value}")

    def ends(self) -> list[Any]:
        """The extreme values a trial can get (checked against the config)."""
        if self.distribution == "choice":
            return list(self.values or [])
        if self.distribution == "int":
            return [int(self.low or 0), int(self.high or 0)]
        return [self.low, self.high]


@dataclass
class ScoreSpec:
    """The score trials are ranked and stopped by (see the module docstring)."""

    energy_penalty: float = 0.02
    """Weight of the normalised energy; 0 ranks by success rate alone."""
    energy_scale_j: float = 1.0
    """Reference energy per episode (J), e.g. the scripted controller's."""

    def validate(self) -> None:
        """Range checks."""
        if self.energy_penalty < 0:
            raise SchemaError("score.energy_penalty", f"must be >= 0, got {self.energy_penalty}")
        if not self.energy_scale_j > 0:
            raise SchemaError("score.energy_scale_j", f"must be > 0, got {self.energy_scale_j}")


@dataclass
class AshaSpec:
    """ASHA early stopping (Ray Tune's ``ASHAScheduler``) on the periodic evaluations."""

    grace_period_steps: int = 10_000
    """No trial is stopped before this many training steps (at most a trial's whole budget)."""
    reduction_factor: float = 3.0
    """Keep the best 1/reduction_factor of the trials at each rung."""

    def validate(self) -> None:
        """Range checks."""
        if self.grace_period_steps < 1:
            raise SchemaError(
                "asha.grace_period_steps", f"must be >= 1, got {self.grace_period_steps}"
            )
        if not self.reduction_factor > 1:
            raise SchemaError("asha.reduction_factor", f"must be > 1, got {self.reduction_factor}")


@dataclass
class SweepSpace:
    """A search space file (see the module docstring)."""

    params: dict[str, ParamSpec]
    """Dotted config key → its distribution."""
    score: ScoreSpec = field(default_factory=ScoreSpec)
    """How trials are ranked."""
    asha: AshaSpec = field(default_factory=AshaSpec)
    """Early stopping."""
    sampler_seed: int = 0
    """Seed of Optuna's TPE sampler."""

    def validate(self) -> None:
        """At least one parameter, each well formed."""
        if not self.params:
            raise SchemaError("params", "name at least one config key to search")
        for key, spec in self.params.items():
            try:
                spec.check()
            except SchemaError as exc:
                raise SchemaError(f"params.{key}.{exc.field}", str(exc).split(": ", 1)[1]) from None


def load_space(path: str | Path) -> tuple[Path, SweepSpace]:
    """Read a space file, or a packaged one by name (``weld``, ``peg``)."""
    resolved = resolve_packaged(path, "sweeps")
    try:
        return resolved, parse(SweepSpace, load_yaml(resolved))
    except SchemaError as exc:
        error = SchemaError("", f"{resolved}: {exc}")
        error.field = exc.field
        raise error from None


def check_space(space: SweepSpace, config: RunConfig) -> None:
    """Refuse a space whose keys or ranges do not give valid configs, naming the parameter."""
    base = to_dict(config)
    for key, spec in space.params.items():
        for value in spec.ends():
            try:
                config_from_dict(apply_params(base, {key: value}))
            except RobocellError as exc:
                raise SchemaError(f"params.{key}", f"{value!r} gives a bad config: {exc}") from None


def apply_params(base: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A copy of the plain config data ``base`` with each dotted key set to its value."""
    data = copy.deepcopy(base)
    for key, value in params.items():
        set_dotted(data, key, value)
    return data


def trial_score(row: dict[str, Any], spec: ScoreSpec) -> float:
    """The score of one periodic evaluation row (``metrics.jsonl``)."""
    energy = row.get("mean/energy_j")
    penalty = 0.0 if energy is None else spec.energy_penalty * energy / spec.energy_scale_j
    return float(row["success_rate"]) - penalty


def tune_domains(space: SweepSpace) -> dict[str, Any]:
    """The space as Ray Tune domains (OptunaSearch hands them to Optuna's TPE sampler)."""
    from ray import tune

    domains: dict[str, Any] = {}
    for key, spec in space.params.items():
        if spec.distribution == "choice":
            domains[key] = tune.choice(list(spec.values or []))
        elif spec.distribution == "int":
            domains[key] = tune.randint(int(spec.low or 0), int(spec.high or 0) + 1)
        elif spec.distribution == "loguniform":
            domains[key] = tune.loguniform(spec.low, spec.high)
        else:
            domains[key] = tune.uniform(spec.low, spec.high)
    return domains
