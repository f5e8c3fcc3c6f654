"""Digests of whole episodes: what the determinism checks compare, bit for bit.

A digest is the sha256 over every observation, reward, flag and ``info`` of a rollout, so two
rollouts share one only if they are bitwise the same. :mod:`robocell.envs.check` compares a
cell's digests here and in a fresh interpreter.
"""

from __future__ import annotations

import hashlib
from contextlib import closing
from typing import Any

import gymnasium as gym
import numpy as np

import robocell.envs
from robocell.envs.make import make_cell, make_controller


def _feed(digest: Any, value: object) -> None:
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
    with closing(make_cell(env_id)) as env:
        env.action_space.seed(seed)
        digest = hashlib.sha256()
        _feed(digest, env.reset(seed=seed))
        for _ in range(steps):
            step = env.step(env.action_space.sample())
            _feed(digest, step)
            if step[2] or step[3]:
                _feed(digest, env.reset()[0])
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
        step = env.step(controller(obs))
        _feed(digest, step)
        obs, _, terminated, truncated, _ = step
        if terminated or truncated:
            return digest.hexdigest()


def cell_digests(env_id: str, seed: int, steps: int) -> list[str]:
    """The random rollout's digest, then the scripted episode's if the cell has a controller."""
    digests = [rollout_digest(env_id, seed, steps)]
    if robocell.envs.CELLS[env_id].controller:
        with closing(make_cell(env_id)) as env:
            digests.append(scripted_episode_digest(env, env_id, seed))
    return digests
