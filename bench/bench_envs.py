"""Env steps per CPU second, physics efficiency and reset time of every registered cell.

physics efficiency = env steps/s × physics_steps_per_action ÷ raw stepSimulation/s: the
share of an env step spent inside the physics engine. The raw rate is measured on the same
scene (a second env of the cell after ``reset(seed=0)``, arm holding still), in blocks
interleaved with the env's own blocks in the same process, so that both see the same load;
each figure is the median over the rounds. 1.0 would mean the env adds nothing to the
physics; panda-gym's PandaReach scores 0.88 on this measure.

Env blocks play seeded random actions with resets included (an episode that ends is reset
inside the timed block). Times are CPU seconds of this process (``time.process_time``): on a
shared machine the wall clock also counts the time other processes hold the core.
"""

from __future__ import annotations

import os
import statistics
import time

import gymnasium as gym
import numpy as np

from robocell.envs import ENV_IDS

ROUNDS = 9
BLOCK_CPU_S = 0.4  # env steps per block: about this much CPU time
RAW_STEPS = 1200  # raw physics steps per block
RESETS = 10  # resets per block (seeded, timed alone)


def _raw_block(sim: object) -> float:
    """CPU seconds per physics step of one block."""
    start = time.process_time()
    for _ in range(RAW_STEPS):
        sim.step()
    return (time.process_time() - start) / RAW_STEPS


def _env_block(env: gym.Env, actions: list, steps: int) -> float:
    """CPU seconds per env step of one block, resets included."""
    start = time.process_time()
    for index in range(steps):
        _, _, terminated, truncated, _ = env.step(actions[index % len(actions)])
        if terminated or truncated:
            env.reset()
    return (time.process_time() - start) / steps


def _reset_block(env: gym.Env, first_seed: int) -> float:
    """CPU seconds per reset (after the first episode: the env's usual reset)."""
    start = time.process_time()
    for seed in range(first_seed, first_seed + RESETS):
        env.reset(seed=seed)
    return (time.process_time() - start) / RESETS


def measure(env_id: str) -> dict[str, float]:
    """Figures for one cell: medians over interleaved rounds."""
    env, still = gym.make(env_id), gym.make(env_id)
    env.reset(seed=1)
    env.action_space.seed(1)
    actions = [env.action_space.sample() for _ in range(256)]
    still.reset(seed=0)
    substeps = env.unwrapped.physics_steps_per_action
    steps = max(5, round(BLOCK_CPU_S / _env_block(env, actions, 3)))
    raw, step, reset = [], [], []
    for round_ in range(ROUNDS):
        raw.append(_raw_block(still.unwrapped.sim))
        step.append(_env_block(env, actions, steps))
        reset.append(_reset_block(still, 1000 + round_ * RESETS))
        still.reset(seed=0)
    env.close()
    still.close()
    ratios = [substeps * r / s for r, s in zip(raw, step, strict=True)]
    return {
        "env_steps_per_cpu_s": round(1.0 / statistics.median(step), 1),
        "physics_steps_per_action": substeps,
        "raw_physics_steps_per_cpu_s": round(1.0 / statistics.median(raw)),
        "physics_efficiency": round(statistics.median(ratios), 3),
        "physics_efficiency_range": [round(min(ratios), 3), round(max(ratios), 3)],
        "reset_ms_cpu": round(statistics.median(reset) * 1000.0, 2),
        "steps_per_block": steps,
    }


def run() -> dict[str, object]:
    """Every registered cell, and the machine's load."""
    np.random.seed(0)
    results: dict[str, object] = {"load_avg_1min_before": round(os.getloadavg()[0], 2)}
    for env_id in ENV_IDS:
        results[env_id] = measure(env_id)
    results["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
