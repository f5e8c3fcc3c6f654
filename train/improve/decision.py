"""When a challenger replaces the champion: validation seeds and the promotion test.

Validation seeds
    Round r validates on ``VALIDATION_FIRST_SEED + r * VALIDATION_ROUND_STRIDE + i`` for
    episode i (0 ≤ i < n ≤ 10,000): 5,000,000 + r·10,000 + i. Both policies of a round play
    exactly these seeds (a paired comparison); each round draws fresh ones, so repeated
    selection does not tune the lineage to one seed set. The block lies apart from every other
    seed robocell uses: training envs (``seed + round + i``, checked at start), periodic
    evaluation (``eval_seed``, 1,000,000 + i by default, checked), demonstrations of
    ``pretrain`` (``pretrain.first_seed``, 3,000,000 + i by default, checked), ``robocell
    eval`` (2,000,000 + i) and export's recordings (900,000 + i). Certification seeds are
    HMAC-SHA256 outputs of a secret master seed that this loop never sees (63-bit integers:
    any one falls into a validation block with probability below 1e-11).

Promotion test (paired by seed, champion vs challenger)
    1. Success not worse: on the seeds where exactly one policy succeeds (b won by the
       champion, c by the challenger), the exact one-sided McNemar test asks whether the
       champion wins more than half of them. Its level-α form is the Clopper–Pearson lower
       bound of b / (b + c): the challenger counts as worse when that bound exceeds 1/2. No
       split seed (b + c = 0) is no evidence of a difference.
    2. Efficiency better: for each configured figure (``energy_j`` per episode, ``cycle_time_s``;
       lower is better) the percentile bootstrap CI (two-sided, ``confidence``, fixed seed) of
       the mean per-seed difference challenger − champion must lie entirely below zero. With
       two figures at 95 % each one-sided claim errs with at most 2.5 %, so the chance of a
       false "better" is at most 5 % (Bonferroni). By default the figures are compared on the
       seeds where both policies succeeded (energy and time per good part): a failed episode
       that ends early costs little energy and time, and comparing those would promote a
       policy for failing faster. Fewer than ``min_paired_episodes`` such seeds is no
       evidence. ``efficiency_episodes: all`` compares every seed instead.
    The challenger is promoted when 1 and 2 hold; otherwise the champion stays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from robocell.eval.stats import bootstrap_ci, clopper_pearson_lower

VALIDATION_FIRST_SEED = 5_000_000
VALIDATION_ROUND_STRIDE = 10_000
BOOTSTRAP_SEED = 0
UNITS = {"energy_j": "J", "cycle_time_s": "s"}


def validation_seeds(round_index: int, episodes: int) -> list[int]:
    """The validation seeds of round ``round_index`` (see the module docstring)."""
    if round_index < 0 or not 1 <= episodes <= VALIDATION_ROUND_STRIDE:
        raise ValueError(f"need round >= 0 and 1 <= episodes <= {VALIDATION_ROUND_STRIDE}")
    first = VALIDATION_FIRST_SEED + round_index * VALIDATION_ROUND_STRIDE
    return [first + i for i in range(episodes)]


def validation_block(rounds: int) -> range:
    """Every seed that rounds 0 … ``rounds`` may validate on."""
    return range(
        VALIDATION_FIRST_SEED, VALIDATION_FIRST_SEED + (rounds + 1) * VALIDATION_ROUND_STRIDE
    )


@dataclass(frozen=True)
class PromotionRule:
    """The settings of the test (see the module docstring)."""

    alpha: float = 0.05
    confidence: float = 0.95
    figures: tuple[str, ...] = ("energy_j", "cycle_time_s")
    efficiency_episodes: str = "both_succeeded"
    """``both_succeeded`` or ``all``: the seeds the efficiency figures are compared on."""
    min_paired_episodes: int = 10


@dataclass(frozen=True)
class SuccessTest:
    """The paired "challenger's success rate is worse" test."""

    n: int
    champion_successes: int
    challenger_successes: int
    champion_only: int
    """Seeds the champion succeeded on and the challenger did not (b)."""
    challenger_only: int
    """Seeds the challenger succeeded on and the champion did not (c)."""
    champion_share_lower: float
    """One-sided (1 − α) Clopper–Pearson lower bound of b / (b + c); 0 when b + c = 0."""
    worse: bool


@dataclass(frozen=True)
class FigureTest:
    """The paired difference of one efficiency figure (challenger − champion, per episode)."""

    figure: str
    n: int
    champion_mean: float
    challenger_mean: float
    diff_mean: float
    ci_low: float
    ci_high: float
    better: bool


@dataclass(frozen=True)
class Decision:
    """The outcome of one round's comparison, with everything needed to check it."""

    promote: bool
    reason: str
    rule: PromotionRule
    success: SuccessTest
    paired_episodes: int
    """Seeds the efficiency figures were compared on (see ``rule.efficiency_episodes``)."""
    figures: list[FigureTest]
    missing_figures: list[str]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        data = asdict(self)
        data["rule"]["figures"] = list(self.rule.figures)
        return data


def decide(
    champion: Sequence[dict[str, float]],
    challenger: Sequence[dict[str, float]],
    rule: PromotionRule = PromotionRule(),
) -> Decision:
    """Compare per-episode ``episode_metrics`` played on the same seeds, in the same order."""
    if len(champion) != len(challenger) or not champion:
        raise ValueError(
            f"need the same, non-zero number of episodes, got {len(champion)} and {len(challenger)}"
        )
    success = success_test(champion, challenger, rule.alpha)
    missing = [f for f in rule.figures if not all(f in m for m in (*champion, *challenger))]
    seeds = efficiency_seeds(champion, challenger, rule.efficiency_episodes)
    tests = []
    if len(seeds) >= rule.min_paired_episodes:
        old, new = [champion[i] for i in seeds], [challenger[i] for i in seeds]
        tests = [
            figure_test(old, new, f, rule.confidence) for f in rule.figures if f not in missing
        ]
    promote = not success.worse and any(t.better for t in tests)
    reason = _reason(promote, rule, success, len(seeds), tests, missing)
    return Decision(promote, reason, rule, success, len(seeds), tests, missing)


def efficiency_seeds(
    champion: Sequence[dict[str, float]], challenger: Sequence[dict[str, float]], which: str
) -> list[int]:
    """Indices of the episodes the efficiency figures are compared on."""
    if which == "all":
        return list(range(len(champion)))
    if which != "both_succeeded":
        raise ValueError(f"efficiency episodes must be all or both_succeeded, got {which!r}")
    return [
        i
        for i, (a, b) in enumerate(zip(champion, challenger, strict=True))
        if a.get("success", 0.0) and b.get("success", 0.0)
    ]


def success_test(
    champion: Sequence[dict[str, float]], challenger: Sequence[dict[str, float]], alpha: float
) -> SuccessTest:
    """Exact one-sided McNemar test at level ``alpha`` via the Clopper–Pearson bound."""
    won_a = [bool(m.get("success", 0.0)) for m in champion]
    won_b = [bool(m.get("success", 0.0)) for m in challenger]
    pairs = list(zip(won_a, won_b, strict=True))
    b = sum(old and not new for old, new in pairs)
    c = sum(new and not old for old, new in pairs)
    bound = clopper_pearson_lower(b, b + c, alpha) if b + c else 0.0
    return SuccessTest(len(won_a), sum(won_a), sum(won_b), b, c, bound, bound > 0.5)


def figure_test(
    champion: Sequence[dict[str, float]],
    challenger: Sequence[dict[str, float]],
    figure: str,
    confidence: float,
) -> FigureTest:
    """Bootstrap CI of the mean per-seed difference of ``figure`` (challenger − champion)."""
    old = np.array([m[figure] for m in champion], dtype=float)
    new = np.array([m[figure] for m in challenger], dtype=float)
    diff = new - old
    low, high = bootstrap_ci(diff, "mean", confidence, seed=BOOTSTRAP_SEED)
    return FigureTest(
        figure,
        len(diff),
        float(old.mean()),
        float(new.mean()),
        float(diff.mean()),
        low,
        high,
        high < 0.0,
    )


def _reason(
    promote: bool,
    rule: PromotionRule,
    success: SuccessTest,
    paired: int,
    tests: list[FigureTest],
    missing: list[str],
) -> str:
    n = success.n
    verdict = "worse" if success.worse else "not worse"
    head = (
        f"success {verdict} (champion {success.champion_successes}/{n}, challenger "
        f"{success.challenger_successes}/{n}; split seeds {success.champion_only}:"
        f"{success.challenger_only}, CP lower bound of the champion's share "
        f"{success.champion_share_lower:.3f} {'>' if success.worse else '<='} 0.5 "
        f"at α={rule.alpha:g})"
    )
    on = "seeds" if rule.efficiency_episodes == "all" else "seeds where both succeeded"
    level = f"{100 * rule.confidence:g}% CI"
    parts = [
        f"{t.figure} {t.diff_mean:+.4g} {UNITS.get(t.figure, '')} per episode on {t.n} "
        f"{on} ({level} [{t.ci_low:.4g}, {t.ci_high:.4g}]"
        f"{', better' if t.better else ''})"
        for t in tests
    ]
    parts += [f"{figure} not reported by the env" for figure in missing]
    if paired < rule.min_paired_episodes and len(missing) < len(rule.figures):
        parts.append(
            f"figures not compared: {paired} {on} (at least {rule.min_paired_episodes} needed)"
        )
    if promote:
        return f"promoted: {head}; " + "; ".join(parts)
    if success.worse:
        return f"kept the champion: {head}; " + "; ".join(parts)
    return f"kept the champion: {head}, but no figure is better: " + "; ".join(parts)
