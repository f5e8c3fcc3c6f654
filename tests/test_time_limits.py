"""``gym.make(id, max_episode_steps=N)`` on every cell: a shorter N ends the episode with
``episode_metrics`` at step N; a longer N is refused (at ``gym.make``) with an error naming
the cell's limit."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from robocell.envs import CELLS, ENV_IDS


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_a_shorter_limit_truncates_with_episode_metrics(env_id: str) -> None:
    # One step fewer than the scripted episodes need is short for every cell; 2 keeps it fast.
    env = gym.make(env_id, max_episode_steps=2)
    try:
        env.reset(seed=0)
        zero = np.zeros(env.action_space.shape, env.action_space.dtype)
        for step in (1, 2):
            _, _, terminated, truncated, info = env.step(zero)
            if terminated:
                pytest.skip(f"{env_id} ended on its own at step {step}")
        assert truncated
        assert info["episode_metrics"]["episode_steps"] == 2
    finally:
        env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_a_longer_limit_is_refused_naming_the_cells_limit(env_id: str) -> None:
    limit = CELLS[env_id].max_episode_steps
    with pytest.raises(ValueError, match=f"limit of {limit} steps"):
        gym.make(env_id, max_episode_steps=limit + 40)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_the_cells_own_limit_is_accepted(env_id: str) -> None:
    gym.make(env_id, max_episode_steps=CELLS[env_id].max_episode_steps).close()
