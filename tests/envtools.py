"""Helpers shared by the env tests (also run in a subprocess for cross-process checks)."""

from __future__ import annotations

import hashlib
import sys

import gymnasium as gym
import numpy as np

import robocell  # noqa: F401  (registers the cells)


def _feed(digest: hashlib._Hash, value: object) -> None:
    if isinstance(value, dict):
        for key in sorted(value):
            digest.update(str(key).encode())
            _feed(digest, value[key])
    elif isinstance(value, np.ndarray):
        digest.update(str(value.dtype).encode() + value.tobytes())
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


if __name__ == "__main__":
    print(rollout_digest(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
