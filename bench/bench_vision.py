"""Vision cell: camera frames/s at 84 × 84 and pick-and-place env steps/s, on one core.

- ``frames_per_s``: the camera image from the render-only client (parts drawn over the
  episode's tray background); ``observations_per_s`` adds copying the part poses from the
  physics client and the state vector; ``physics_client_frames_per_s`` draws the same camera
  from the physics client (robot, table, bins, tray and parts) for comparison.
- ``env_steps_per_s``: the scripted sorter's episodes, every step one whole pick-and-place
  cycle; with and without the time of the resets between episodes.

The process is pinned to one core. The machine is shared, so every rate is given per
wall-clock second and per CPU second of this process (``*_cpu``); the CPU figure is what
one core costs when nothing else competes for it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import gymnasium as gym

from robocell.envs.vision.controller import ScriptedSorter

SECONDS = 5.0
ENV_ID = "robocell/VisionSort-v1"


def _rates(action: Callable[[], object], seconds: float = SECONDS) -> tuple[float, float]:
    """Calls per wall-clock second and per CPU second of ``action``, run for ``seconds``."""
    action()  # warm up
    count, wall, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        action()
        count += 1
    return count / (time.perf_counter() - wall), count / (time.process_time() - cpu)


def _frames(env: gym.Env) -> dict[str, float]:
    env.reset(seed=0)
    task = env.unwrapped.task
    camera, light = task.camera, task.render_client.light
    view, projection = camera.view_matrix(), camera.projection_matrix()
    size = camera.size_px
    figures = {}
    for name, action in (
        ("frames_per_s", task.render_client.render),
        ("observations_per_s", task.observe),
        (
            "physics_client_frames_per_s",
            lambda: env.unwrapped.sim.camera_image(size, size, view, projection, light),
        ),
    ):
        wall, cpu = _rates(action)
        figures[name], figures[f"{name}_cpu"] = round(wall, 1), round(cpu, 1)
    return figures


def _episodes(env: gym.Env) -> dict[str, float]:
    policy = ScriptedSorter(env.unwrapped)
    steps = resets = 0
    step_wall = step_cpu = reset_wall = reset_cpu = 0.0
    while step_wall + reset_wall < 2 * SECONDS:
        wall, cpu = time.perf_counter(), time.process_time()
        obs, _ = env.reset(seed=resets)
        policy.reset()
        reset_wall += time.perf_counter() - wall
        reset_cpu += time.process_time() - cpu
        resets += 1
        done = False
        while not done:
            wall, cpu = time.perf_counter(), time.process_time()
            obs, _, terminated, truncated, _ = env.step(policy(obs))
            step_wall += time.perf_counter() - wall
            step_cpu += time.process_time() - cpu
            steps += 1
            done = terminated or truncated
    return {
        "env_steps_per_s": round(steps / (step_wall + reset_wall), 1),
        "env_steps_per_s_cpu": round(steps / (step_cpu + reset_cpu), 1),
        "env_steps_per_s_without_resets": round(steps / step_wall, 1),
        "env_steps_per_s_without_resets_cpu": round(steps / step_cpu, 1),
        "reset_ms": round(1000.0 * reset_wall / resets, 1),
        "reset_ms_cpu": round(1000.0 * reset_cpu / resets, 1),
        "episodes": resets,
        "steps": steps,
    }


def run() -> dict[str, float]:
    """Frames/s at 84 × 84 and scripted env steps/s of the vision cell on one core."""
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})
    env = gym.make(ENV_ID)
    try:
        results = {"image_size": 84, **_frames(env), **_episodes(env)}
        results["physics_steps_per_action"] = env.unwrapped.physics_steps_per_action
        results["simulated_s_per_step"] = env.unwrapped.task.control_period_s
    finally:
        env.close()
        os.sched_setaffinity(0, affinity)
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
