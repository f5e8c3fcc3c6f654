"""PyBullet robot cells, registered with Gymnasium under the ``robocell/`` namespace.

``ENV_IDS`` lists every registered cell; tests and the CLI pick new cells up from it.
Adding a cell is one folder (task, env, scripted controller, its ``CELL``), one entry in
``_CELLS`` and one training config.
"""

from __future__ import annotations

import gymnasium as gym
from gymnasium.envs.registration import WrapperSpec

from robocell.envs import peg, vision, weld
from robocell.envs.spec import CellSpec

_CELLS = (weld.CELL, peg.CELL, vision.CELL)

CELLS: dict[str, CellSpec] = {cell.env_id: cell for cell in _CELLS}
ENV_IDS: tuple[str, ...] = tuple(CELLS)

for _cell in _CELLS:
    if _cell.env_id not in gym.registry:
        gym.register(
            id=_cell.env_id,
            entry_point=_cell.entry_point,
            max_episode_steps=_cell.max_episode_steps,
            reward_threshold=_cell.reward_threshold,
            # Outside TimeLimit: a max_episode_steps given to gym.make is honoured both ways.
            additional_wrappers=(
                WrapperSpec("CellTimeLimit", "robocell.envs.time_limit:CellTimeLimit", {}),
            ),
        )
