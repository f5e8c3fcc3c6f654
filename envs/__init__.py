"""PyBullet robot cells, registered with Gymnasium under the ``robocell/`` namespace.

``ENV_IDS`` lists every registered cell; tests and the CLI pick new cells up from it.
Adding a cell is one task module, one row in ``_CELLS`` and one training config.
"""

from __future__ import annotations

from typing import NamedTuple

import gymnasium as gym


class CellSpec(NamedTuple):
    """One registered cell: id, entry point, episode length and solved threshold."""

    env_id: str
    entry_point: str
    max_episode_steps: int
    reward_threshold: float
    summary: str


_CELLS = (
    CellSpec(
        "robocell/WeldSeam-v0",
        "robocell.envs.weld:WeldSeamEnv",
        max_episode_steps=450,
        reward_threshold=15.0,  # a successful weld of the shortest seam returns about 15.6
        summary="Arc-weld a randomised seam found with a noisy laser seam tracker (KUKA iiwa).",
    ),
    CellSpec(
        "robocell/PegInsert-v0",
        "robocell.envs.peg:PegInsertEnv",
        max_episode_steps=300,
        reward_threshold=12.0,
        summary="Insert a peg into a chamfered hole found by touch (compliant KUKA iiwa, F/T).",
    ),
    CellSpec(
        "robocell/VisionSort-v1",
        "robocell.envs.vision:VisionSortEnv",
        max_episode_steps=7,  # the attempt budget of the largest tray: 5 parts + 2
        reward_threshold=2.5,  # sorting the smallest tray (3 parts) right returns about 2.7
        summary="Sort good and defective parts into OK/NG bins from an overhead camera image.",
    ),
)

CELLS: dict[str, CellSpec] = {cell.env_id: cell for cell in _CELLS}
ENV_IDS: tuple[str, ...] = tuple(CELLS)

for _cell in _CELLS:
    if _cell.env_id not in gym.registry:
        gym.register(
            id=_cell.env_id,
            entry_point=_cell.entry_point,
            max_episode_steps=_cell.max_episode_steps,
            reward_threshold=_cell.reward_threshold,
        )
