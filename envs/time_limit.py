"""Gymnasium's ``max_episode_steps`` on a cell, honoured both ways.

Gymnasium keeps a ``max_episode_steps`` given to ``gym.make`` in its TimeLimit wrapper, out
of the cell's sight. :class:`CellTimeLimit`, registered as every cell's additional wrapper
(outside TimeLimit), gives an episode that TimeLimit cuts short the cell's
``episode_metrics``, like any truncation, and refuses a limit longer than the cell's own: the
task's episode time bounds what the cell can do, so such an episode would still end at the
cell's limit.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.utils import RecordConstructorArgs
from gymnasium.wrappers import TimeLimit


class CellTimeLimit(gym.Wrapper, RecordConstructorArgs):
    """Adds ``episode_metrics`` at a TimeLimit truncation; refuses a limit over the cell's."""

    def __init__(self, env: gym.Env) -> None:
        RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        asked, own = _time_limit(env), env.unwrapped.max_steps
        if asked is not None and asked > own:
            cell = env.unwrapped.spec.id if env.unwrapped.spec else type(env.unwrapped).__name__
            raise ValueError(
                f"{cell}: max_episode_steps={asked} is longer than the cell's limit of {own} "
                f"steps; ask for at most {own}"
            )

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step; an episode that ended without the cell's figures gets them now."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        if (terminated or truncated) and "episode_metrics" not in info:
            info = {**info, "episode_metrics": self.env.unwrapped.episode_metrics()}
        return obs, reward, terminated, truncated, info


def _time_limit(env: gym.Env) -> int | None:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, TimeLimit):
            return int(env._max_episode_steps)
        env = env.env
    return None
