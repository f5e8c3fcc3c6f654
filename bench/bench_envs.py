"""Env steps/s and physics efficiency of every registered cell, on one core.

physics efficiency = env steps/s × physics_steps_per_action ÷ raw stepSimulation/s, the raw
rate measured on the same scene (after a reset, arm holding still) in the same run. 1.0 would
mean the env adds nothing to the physics; panda-gym's PandaReach scores 0.88 here.
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

from robocell.envs import ENV_IDS

SECONDS = 10.0


def _raw_steps_per_s(env: gym.Env) -> float:
    env.reset(seed=0)
    sim = env.unwrapped.sim
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < SECONDS / 2:
        for _ in range(100):
            sim.step()
        steps += 100
    return steps / (time.perf_counter() - start)


def _env_steps_per_s(env: gym.Env) -> tuple[float, int]:
    env.reset(seed=1)
    env.action_space.seed(1)
    actions = [env.action_space.sample() for _ in range(256)]
    steps, resets, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < SECONDS:
        _, _, terminated, truncated, _ = env.step(actions[steps % len(actions)])
        steps += 1
        if terminated or truncated:
            env.reset()
            resets += 1
    return steps / (time.perf_counter() - start), resets


def measure(env_id: str) -> dict[str, float]:
    """Figures for one cell (random actions, resets included in the env rate)."""
    env = gym.make(env_id)
    raw = _raw_steps_per_s(env)
    rate, resets = _env_steps_per_s(env)
    substeps = env.unwrapped.physics_steps_per_action
    env.close()
    return {
        "env_steps_per_s": round(rate, 1),
        "physics_steps_per_action": substeps,
        "raw_physics_steps_per_s": round(raw, 1),
        "physics_efficiency": round(rate * substeps / raw, 3),
        "resets_during_measurement": resets,
    }


def run() -> dict[str, dict[str, float]]:
    """Every registered cell."""
    np.random.seed(0)
    return {env_id: measure(env_id) for env_id in ENV_IDS}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
