"""The ``improve:`` section of a training config: settings of the champion/challenger loop.

Optional; ``robocell improve`` uses the defaults when a config has none. Example::

    improve:
      steps_per_round: 50000        # challenger training per round
      validation_episodes: 50       # paired episodes per policy and round
      alpha: 0.05                   # level of the one-sided "success is worse" test
      confidence: 0.95              # two-sided bootstrap CI of the energy/cycle-time difference
      figures: [energy_j, cycle_time_s]
      efficiency_episodes: both_succeeded   # compare figures where both welded good (or: all)
      min_paired_episodes: 10
      schedule:                     # env_kwargs changes of round 1, 2, …; the last one holds on
        - {}
        - {energy_weight: 4.0e-4}
        - {energy_weight: 4.0e-4, pose_noise_mm: 25.0}

Nothing here imports torch or SB3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from robocell.schema import SchemaError

# Validation seeds of one round come from a block of this many consecutive seeds
# (see robocell.train.improve.decision.validation_seeds), so no round may ask for more.
MAX_VALIDATION_EPISODES = 10_000

EfficiencyFigure = Literal["energy_j", "cycle_time_s"]


@dataclass
class ImproveConfig:
    """How ``robocell improve`` trains, validates and promotes challengers."""

    steps_per_round: int = 50_000
    """Environment steps each challenger trains from the champion's weights."""
    validation_episodes: int = 50
    """Episodes per policy per round, on the round's validation seeds (paired by seed)."""
    alpha: float = 0.05
    """Level of the one-sided exact test that blocks a challenger whose success rate is worse."""
    confidence: float = 0.95
    """Confidence of the two-sided bootstrap CI of the mean per-episode figure difference."""
    figures: list[EfficiencyFigure] = field(default_factory=lambda: ["energy_j", "cycle_time_s"])
    """Figures (lower is better) of which at least one must improve for a promotion."""
    efficiency_episodes: Literal["both_succeeded", "all"] = "both_succeeded"
    """Seeds the figures are compared on: where both policies succeeded (per good part), or
    all (then a policy that fails early can look efficient)."""
    min_paired_episodes: int = 10
    """Fewest such seeds that count as evidence; with fewer the champion stays."""
    schedule: list[dict[str, Any]] = field(default_factory=list)
    """``env_kwargs`` updates for rounds 1, 2, …; rounds past the list keep the last entry."""

    def validate(self) -> None:
        """Range checks; messages name ``improve.<field>``."""
        if self.steps_per_round < 1:
            raise SchemaError(
                "improve.steps_per_round", f"must be >= 1, got {self.steps_per_round}"
            )
        if not 1 <= self.validation_episodes <= MAX_VALIDATION_EPISODES:
            raise SchemaError(
                "improve.validation_episodes",
                f"must be in [1, {MAX_VALIDATION_EPISODES}], got {self.validation_episodes}",
            )
        for name in ("alpha", "confidence"):
            if not 0 < getattr(self, name) < 1:
                raise SchemaError(
                    f"improve.{name}", f"must be in (0, 1), got {getattr(self, name)}"
                )
        if self.min_paired_episodes < 1:
            raise SchemaError(
                "improve.min_paired_episodes", f"must be >= 1, got {self.min_paired_episodes}"
            )
        if not self.figures:
            raise SchemaError("improve.figures", "name at least one of energy_j, cycle_time_s")
        if len(set(self.figures)) != len(self.figures):
            raise SchemaError("improve.figures", f"lists a figure twice: {self.figures}")

    def env_kwargs_for_round(self, base: dict[str, Any], round_index: int) -> dict[str, Any]:
        """The env kwargs a challenger of ``round_index`` (>= 1) trains and validates with."""
        if not self.schedule or round_index < 1:
            return dict(base)
        step = self.schedule[min(round_index, len(self.schedule)) - 1]
        return {**base, **step}
