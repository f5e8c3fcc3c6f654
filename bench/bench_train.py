"""PPO training throughput on the weld and peg cells: their configs, 2 subprocess envs.

``fps`` is env steps collected and learned per wall second over a few PPO iterations (no
imitation warm start, no periodic evaluation). The learner's time is split into
``rollout`` (``collect_rollouts``: waiting for the env workers' steps, policy inference and
buffer bookkeeping in the learner) and ``update`` (``train``: the gradient epochs); within
the rollout, ``env_wait`` is the time spent waiting for the workers. The limit is the same
2 subprocess envs stepped alone with random actions (same wrappers and normalisation, no
policy, no learning): ``fps_over_env_only`` = fps ÷ that rate. CPU seconds of the learner
and of the env workers are given too: on a shared machine the wall clock also counts the
time other jobs hold the cores.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from robocell.agents.algos import build_model
from robocell.train.config import load_config
from robocell.train.vec_env import make_vec_env

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RUNS = {"robocell/WeldSeam-v0": "weld_ppo.yaml", "robocell/PegInsert-v0": "peg_ppo.yaml"}
ITERATIONS = 2  # PPO iterations (rollout + update) per cell


class _Timer:
    """Wraps a bound method and adds up its wall seconds."""

    def __init__(self, owner: Any, name: str) -> None:
        self.inner = getattr(owner, name)
        self.seconds = 0.0
        setattr(owner, name, self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.inner(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def _learn(config: Any) -> dict[str, float]:
    import torch

    torch.set_num_threads(config.torch_threads)
    venv = make_vec_env(config)
    model = build_model(config, venv)
    rollout, update = _Timer(model, "collect_rollouts"), _Timer(model, "train")
    env_wait = _Timer(venv.unwrapped, "step_wait")
    frames = ITERATIONS * model.n_steps * model.n_envs
    start, cpu, workers = time.perf_counter(), _own_cpu_s(), _workers_cpu_s(venv)
    model.learn(frames)
    wall = time.perf_counter() - start
    own, workers = _own_cpu_s() - cpu, _workers_cpu_s(venv) - workers
    venv.close()
    return {
        "frames": frames,
        "fps": round(frames / wall, 1),
        "wall_s": round(wall, 2),
        "rollout_share": round(rollout.seconds / wall, 3),
        "env_wait_share": round(env_wait.seconds / wall, 3),
        "update_share": round(update.seconds / wall, 3),
        "learner_cpu_s": round(own, 2),
        "env_workers_cpu_s": round(workers, 2),
    }


def _env_only_fps(config: Any, frames: int) -> float:
    """The same vectorised envs stepped alone with random actions (frames per wall second)."""
    venv = make_vec_env(config)
    venv.reset()
    rng = np.random.default_rng(0)
    low, high = venv.action_space.low, venv.action_space.high
    steps = frames // venv.num_envs
    start = time.perf_counter()
    for _ in range(steps):
        venv.step(rng.uniform(low, high, (venv.num_envs, *low.shape)).astype(np.float32))
    wall = time.perf_counter() - start
    venv.close()
    return steps * venv.num_envs / wall


def measure(env_id: str) -> dict[str, float]:
    """Throughput of one cell's training config."""
    config = load_config(CONFIGS / RUNS[env_id])
    learned = _learn(config)
    limit = _env_only_fps(config, learned["frames"])
    return {
        **learned,
        "env_only_fps": round(limit, 1),
        "fps_over_env_only": round(learned["fps"] / limit, 3),
    }


def run() -> dict[str, Any]:
    """Both cells, and the machine's load."""
    results: dict[str, Any] = {"load_avg_1min_before": round(os.getloadavg()[0], 2)}
    for env_id in RUNS:
        results[env_id] = measure(env_id)
    results["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
    return results


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _workers_cpu_s(venv: Any) -> float:
    """CPU seconds of the subprocess env workers so far (they are not this process's
    children when SB3 starts them through a fork server), from ``/proc``."""
    total = 0.0
    for process in getattr(venv.unwrapped, "processes", []):
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
