"""Run whole episodes with any policy and summarise their ``episode_metrics``.

Used by the scripted baselines, bundle rollouts, quick evaluation and certification, so every
one of them counts episodes and aggregates figures the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

Policy = Callable[[Any], np.ndarray]


def run_episode(env: gym.Env, policy: Policy, seed: int) -> dict[str, float]:
    """Play one episode from ``reset(seed=seed)``; returns its ``episode_metrics``.

    ``policy`` maps an observation to an action. If the policy object has a ``reset()``
    method it is called first (scripted controllers keep per-episode state).
    """
    obs, _ = env.reset(seed=seed)
    if hasattr(policy, "reset"):
        policy.reset()
    while True:
        obs, _, terminated, truncated, info = env.step(policy(obs))
        if terminated or truncated:
            metrics = dict(info["episode_metrics"])
            if "fault" in info:
                metrics["fault"] = 1.0
            return metrics


def episode_seeds(first_seed: int, episodes: int) -> list[int]:
    """Seeds of ``episodes`` consecutive episodes starting at ``first_seed``."""
    return [first_seed + i for i in range(episodes)]


def summarize(episodes: Sequence[dict[str, float]]) -> dict[str, float]:
    """``success_rate``, ``episodes`` and the mean of every figure over the episodes."""
    if not episodes:
        raise ValueError("no episodes to summarise")
    keys = sorted({key for metrics in episodes for key in metrics})
    summary = {"episodes": float(len(episodes))}
    summary["success_rate"] = float(np.mean([m.get("success", 0.0) for m in episodes]))
    for key in keys:
        values = [m[key] for m in episodes if key in m]
        summary[f"mean/{key}"] = float(np.mean(values))
    return summary
