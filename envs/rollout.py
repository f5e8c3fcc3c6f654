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
# Episode figures a guarded bundle adds (see robocell.agents.bundle.policy.BundlePolicy).
POLICY_FAULTS = "policy_faults"
CLIPPED_OBSERVATIONS = "clipped_observations"
HALTED_ON_FAULT = "halted_on_fault"


class HaltEpisode(Exception):
    """Raised by a policy whose action must not be executed (a faulted pick): the episode
    stops there, as a failed one."""


def run_episode(env: gym.Env, policy: Policy, seed: int) -> dict[str, float]:
    """Play one episode from ``reset(seed=seed)``; returns its ``episode_metrics``.

    ``policy`` maps an observation to an action. If the policy object has a ``reset()``
    method it is called first (scripted controllers keep per-episode state). A policy with
    ``episode_counts()`` (a bundle: faulted rows, clipped observations) adds them to the
    metrics; an episode with a faulted row is not a success. A policy that raises
    :class:`HaltEpisode` ends the episode there (``success`` 0, ``halted_on_fault`` 1).
    """
    obs, _ = env.reset(seed=seed)
    if hasattr(policy, "reset"):
        policy.reset()
    steps = 0
    while True:
        try:
            action = policy(obs)
        except HaltEpisode:
            metrics = {"success": 0.0, "episode_steps": float(steps), HALTED_ON_FAULT: 1.0}
            return with_policy_counts(metrics, _counts(policy))
        obs, _, terminated, truncated, info = env.step(action)
        steps += 1
        if terminated or truncated:
            metrics = dict(info["episode_metrics"])
            if "fault" in info:
                metrics["fault"] = 1.0
            return with_policy_counts(metrics, _counts(policy))


def _counts(policy: Policy) -> dict[str, float]:
    counts = getattr(policy, "episode_counts", None)
    return {} if counts is None else counts()


def with_policy_counts(metrics: dict[str, float], counts: dict[str, float]) -> dict[str, float]:
    """``metrics`` with a bundle's fault and clip counts; a faulted episode is no success."""
    metrics.update(counts)
    if metrics.get(POLICY_FAULTS, 0.0) > 0:
        metrics["success"] = 0.0  # a controller that saw a failed sensor did not succeed
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
