"""Evaluate a policy on fixed seeds: per-episode figures, means and bootstrap intervals.

Shared by the periodic evaluation during training and ``robocell eval``. Episodes run through
:func:`robocell.envs.rollout.run_episode`, so they count and aggregate like every other
rollout in robocell.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robocell.envs.rollout import Policy, run_episode
from robocell.eval.stats import bootstrap_ci
from robocell.normalizer import NormalizerStats

if TYPE_CHECKING:
    from robocell.train.rundir import LoadedRun

# Fixed bootstrap seed: the same episodes always give the same interval.
BOOTSTRAP_SEED = 0


def model_policy(model: Any, normalizer: NormalizerStats | None) -> Policy:
    """A raw-observation → action function: normalise, then the model's deterministic action."""

    def act(obs: Any) -> np.ndarray:
        if normalizer is not None:
            obs = normalizer.normalize(obs)
        action, _ = model.predict(obs, deterministic=True)
        return action

    return act


class FrameRecorder:
    """Wraps a policy and renders every ``every``-th observation it sees (≤ ``max_frames``)."""

    def __init__(self, env: Any, policy: Policy, every: int = 3, max_frames: int = 150) -> None:
        self.env, self.policy = env, policy
        self.every, self.max_frames = every, max_frames
        self.frames: list[np.ndarray] = []
        self._calls = 0

    def __call__(self, obs: Any) -> np.ndarray:
        """Render (sometimes), then act."""
        if self._calls % self.every == 0 and len(self.frames) < self.max_frames:
            frame = self.env.render()
            if frame is not None:
                self.frames.append(np.asarray(frame)[..., :3])
        self._calls += 1
        return self.policy(obs)


def run_episodes(
    env: Any,
    policy: Policy,
    seeds: Sequence[int],
    should_stop: Callable[[], bool] | None = None,
) -> list[dict[str, float]]:
    """``episode_metrics`` of one episode per seed; stops early when ``should_stop()``."""
    episodes = []
    for seed in seeds:
        if should_stop is not None and should_stop():
            break
        episodes.append(run_episode(env, policy, seed))
    return episodes


def evaluate_run(
    run_dir: str | Path, checkpoint: str | Path, first_seed: int, episodes: int
) -> tuple[LoadedRun, list[dict[str, float]]]:
    """A run's model (``best``, ``last`` or a checkpoint zip) played on consecutive seeds.

    The episodes of ``robocell eval``: the run's own cell and env kwargs, the deterministic
    action, seeds ``first_seed … first_seed + episodes − 1``.
    """
    from robocell.envs.make import make_cell
    from robocell.envs.rollout import episode_seeds
    from robocell.train.rundir import load_run

    run = load_run(run_dir, checkpoint)
    env = make_cell(run.config.env_id, run.config.env_kwargs)
    try:
        policy = model_policy(run.model, run.normalizer)
        return run, run_episodes(env, policy, episode_seeds(first_seed, episodes))
    finally:
        env.close()


def episode_return(metrics: dict[str, float]) -> float:
    """The episode's total reward: the sum of its ``return/<term>`` figures."""
    return float(sum(v for k, v in metrics.items() if k.startswith("return/")))


def figure_table(
    episodes: Sequence[dict[str, float]], confidence: float = 0.95
) -> dict[str, dict[str, float]]:
    """Per figure: ``mean``, ``ci_low``, ``ci_high`` and ``n`` episodes.

    The interval is the percentile bootstrap of the mean (:func:`robocell.eval.stats.bootstrap_ci`,
    fixed seed), the same statistics certification uses.
    """
    table: dict[str, dict[str, float]] = {}
    rows = [{**m, "return": episode_return(m)} for m in episodes]
    for key in sorted({k for m in rows for k in m}):
        values = [m[key] for m in rows if key in m]
        low, high = bootstrap_ci(values, "mean", confidence, seed=BOOTSTRAP_SEED)
        table[key] = {"mean": float(np.mean(values)), "ci_low": low, "ci_high": high,
                      "n": float(len(values))}  # fmt: skip
    return table
