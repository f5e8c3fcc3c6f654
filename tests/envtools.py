"""Helpers shared by the env tests (also run in a subprocess for cross-process checks)."""

from __future__ import annotations

import hashlib
import sys

import gymnasium as gym
import numpy as np

import robocell  # noqa: F401  (registers the cells)
from robocell.envs.make import make_controller


def _feed(digest: hashlib._Hash, value: object) -> None:
    if isinstance(value, dict):
        for key in sorted(value):
            digest.update(str(key).encode())
            _feed(digest, value[key])
    elif isinstance(value, np.ndarray):
        digest.update(str(value.dtype).encode() + value.tobytes())
    elif isinstance(value, tuple):
        for item in value:
            _feed(digest, item)
    else:
        digest.update(repr(value).encode())


def rollout_digest(env_id: str, seed: int, steps: int) -> str:
    """sha256 over every observation, reward, flag and info of a seeded random rollout."""
    env = gym.make(env_id)
    env.action_space.seed(seed)
    digest = hashlib.sha256()
    obs, info = env.reset(seed=seed)
    _feed(digest, obs)
    _feed(digest, info)
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        for value in (obs, reward, terminated, truncated, info):
            _feed(digest, value)
        if terminated or truncated:
            obs, info = env.reset()
            _feed(digest, obs)
    env.close()
    return digest.hexdigest()


def scripted_episode_digest(env: gym.Env, env_id: str, seed: int) -> str:
    """sha256 over one whole episode of the cell's scripted controller from ``reset(seed)``.

    Scripted episodes touch what random actions rarely do: the peg goes into its hole, the
    sorter fills the bins, so the digest covers contact-rich physics.
    """
    controller = make_controller(env_id, env.unwrapped)
    digest = hashlib.sha256()
    obs, info = env.reset(seed=seed)
    controller.reset()
    _feed(digest, (obs, info))
    while True:
        obs, reward, terminated, truncated, info = env.step(controller(obs))
        for value in (obs, reward, terminated, truncated, info):
            _feed(digest, value)
        if terminated or truncated:
            return digest.hexdigest()


if __name__ == "__main__":
    print(rollout_digest(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
