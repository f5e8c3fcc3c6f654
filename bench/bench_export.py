"""Export per cell: wall time, parity (max |Δa|) and closed-loop agreement.

For every registered cell, SB3's default PPO policy for its observation space (MLP for
vectors, CNN + MLP for the vision cell's image and state), untrained, with observation
statistics estimated from 200 random-action steps, is exported through
:func:`robocell.agents.export.export_model` — the same checks as ``robocell export``:
at least 1,000 recorded observations plus boundary cases, then 3 replayed episodes.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from robocell.agents.export import ExportSource, export_model
from robocell.envs import ENV_IDS
from robocell.normalizer import NormalizerStats, RunningStats


def run() -> dict:
    """One row of export figures per registered cell."""
    torch.set_num_threads(1)
    return {env_id: _export(env_id) for env_id in ENV_IDS}


def _export(env_id: str) -> dict[str, Any]:
    from stable_baselines3 import PPO

    env = gym.make(env_id)
    policy = "MultiInputPolicy" if isinstance(env.observation_space, spaces.Dict) else "MlpPolicy"
    model = PPO(policy, env, seed=0, device="cpu")
    stats = _normalizer(env)
    env.close()
    source = ExportSource(model, stats, env_id, {}, "ppo", "bench", "0" * 64, "untrained")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report = export_model(source, Path(tmp) / "bundle")
        wall_s = time.perf_counter() - start
        onnx_bytes = (report.bundle_dir / "policy.onnx").stat().st_size
    return {
        "export_wall_s": wall_s,
        "onnx_bytes": onnx_bytes,
        "parity_observations": report.parity_observations,
        "boundary_cases": report.boundary_cases,
        "max_abs_diff": report.max_abs_diff,
        "worst_ratio": report.worst_ratio,
        "closed_loop": f"{report.closed_loop_matches}/{len(report.closed_loop)}",
    }


def _normalizer(env: gym.Env, steps: int = 200) -> NormalizerStats:
    # Like a run's VecNormalize: every non-image input is normalised, images never are.
    env.action_space.seed(0)
    samples, (obs, _) = [], env.reset(seed=0)
    for _ in range(steps):
        samples.append(obs)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    if isinstance(env.observation_space, spaces.Dict):
        keys = [k for k, s in env.observation_space.spaces.items() if s.dtype != np.uint8]
        stats = {key: _running([sample[key] for sample in samples]) for key in keys}
        return NormalizerStats(10.0, 1e-8, stats)
    return NormalizerStats(10.0, 1e-8, _running(samples))


def _running(values: list[Any]) -> RunningStats:
    data = np.asarray(values, dtype=np.float64)
    return RunningStats(data.mean(0), data.var(0), float(len(data)))


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
