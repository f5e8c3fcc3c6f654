"""A population of challengers per round: their configs, ids, parallel training and the choice.

With ``--challengers K`` each round r ≥ 1 trains K challengers from the champion at once (one
job each through the executor seam: local processes or Ray tasks). Challenger k (0-based)
trains on seed ``seed + (r − 1)·K + k + 1`` in the round's env (``improve.schedule``), so
K = 1 is the single-challenger loop exactly. All K play round r's validation seeds, paired
with the champion on the same seeds.

Multiple comparisons: K challengers are K chances for a false promotion. What promotes a
challenger is the claim "better on a figure"; each challenger's claim is made at confidence
1 − (1 − confidence)/K (Bonferroni: with the defaults, two-sided 98.33 % CIs for K = 3), so the
chance that the round promotes a challenger that is not truly better stays at most
1 − confidence, as with one challenger. The success guard (block a challenger that is worse,
one-sided at α) is not divided: dividing α would make it block less often, i.e. weaker. Of the
challengers that pass, the one with the most validation successes is promoted, ties broken by
the largest relative improvement of a better figure; at most one is promoted per round.
"""

from __future__ import annotations

import shutil
import string
from pathlib import Path
from typing import Any

from robocell.normalizer import NormalizerStats
from robocell.schema import SchemaError, to_dict
from robocell.train.config import RunConfig, config_from_dict
from robocell.train.improve.config import ImproveConfig
from robocell.train.improve.decision import Decision, PromotionRule, validation_block
from robocell.train.improve.policy_registry import version_id

MAX_CHALLENGERS = len(string.ascii_lowercase)


def promotion_rule(improve: ImproveConfig, challengers: int = 1) -> PromotionRule:
    """The promotion test's settings, the "better" claim Bonferroni-corrected for K challengers."""
    return PromotionRule(
        improve.alpha,
        1 - (1 - improve.confidence) / challengers,
        tuple(improve.figures),
        improve.efficiency_episodes,
        improve.min_paired_episodes,
    )


def round_config(base: RunConfig, round_index: int, seed: int | None = None) -> RunConfig:
    """The training config of one round (round 0: the base config as it is)."""
    improve = base.improve
    data = to_dict(base)
    data["run_name"] = None
    if round_index > 0:
        data.update(
            total_timesteps=improve.steps_per_round,
            seed=base.seed + round_index if seed is None else seed,
            env_kwargs=improve.env_kwargs_for_round(base.env_kwargs, round_index),
        )
    return config_from_dict(data)


def challenger_configs(base: RunConfig, round_index: int, count: int) -> dict[str, RunConfig]:
    """Version id → training config of each challenger of round ``round_index`` (≥ 1)."""
    first = base.seed + (round_index - 1) * count + 1
    return {
        challenger_id(round_index, k, count): round_config(base, round_index, first + k)
        for k in range(count)
    }


def challenger_id(round_index: int, k: int, count: int) -> str:
    """``v003`` for the only challenger of round 3; ``v003a``, ``v003b``, … for several."""
    return version_id(round_index) + ("" if count == 1 else string.ascii_lowercase[k])


def train_challenger(
    config_data: dict[str, Any],
    run_dir: str,
    command: str,
    parent_zip: str,
    parent_normalizer: NormalizerStats | None,
    parent_reward_stats: dict[str, Any] | None,
    progress: bool,
) -> bool:
    """The job of one challenger: train it from the champion; True when it finished.

    A retried job (a lost Ray worker) starts the challenger again from the champion.
    """
    from robocell.train.improve.warm_start import start_run_from

    if Path(run_dir).exists():
        shutil.rmtree(run_dir)
    result = start_run_from(
        config_from_dict(config_data),
        run_dir,
        command,
        parent_zip,
        parent_normalizer,
        parent_reward_stats,
        progress,
    )
    return not result.interrupted


def pick(decisions: dict[str, Decision]) -> str | None:
    """The challenger to promote among those whose test passed (see the module docstring)."""
    passed = [vid for vid, decision in decisions.items() if decision.promote]
    if not passed:
        return None
    return max(passed, key=lambda vid: _merit(decisions[vid]))


def _merit(decision: Decision) -> tuple[int, float]:
    gains = [
        -t.diff_mean / t.champion_mean for t in decision.figures if t.better and t.champion_mean
    ]
    return decision.success.challenger_successes, max(gains, default=0.0)


def runner_up_reason(decision: Decision, chosen: str) -> str:
    """The reason of a challenger that passed its test but was not the one promoted."""
    return f"kept the champion: passed its test, but {chosen} was promoted instead; " + (
        decision.reason.removeprefix("promoted: ")
    )


def check_seed_namespaces(config: RunConfig, rounds: int, challengers: int = 1) -> None:
    """Refuse configs whose training or evaluation seeds overlap the validation seeds."""
    block = validation_block(rounds)
    used = {
        "seed": range(config.seed, config.seed + rounds * challengers + config.n_envs),
        "eval_seed": range(config.eval_seed, config.eval_seed + config.eval_episodes),
    }
    if config.pretrain is not None:  # demonstrations are played in round 0 only
        demo = config.pretrain
        count = demo.episodes + demo.dagger_rounds * demo.dagger_episodes
        used["pretrain.first_seed"] = range(demo.first_seed, demo.first_seed + count)
    for name, seeds in used.items():
        if max(seeds.start, block.start) < min(seeds.stop, block.stop):
            raise SchemaError(
                name,
                f"seeds {seeds.start}–{seeds.stop - 1} overlap the "
                f"validation seeds of robocell improve ({block.start}–"
                f"{block.stop - 1}); choose another {name}",
            )
