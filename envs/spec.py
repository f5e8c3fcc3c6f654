"""What registers a cell: its id, entry point, episode length and scripted controller.

Each built-in cell's folder defines its ``CELL``, a plug-in package declares its own under the
``robocell.cells`` entry-point group, and :func:`robocell.envs.register_cell` registers them
all the same way. This module imports nothing heavy, so ``import robocell`` stays cheap.
"""

from __future__ import annotations

from typing import NamedTuple

from robocell.envs.line_params import LineParameter


class CellSpec(NamedTuple):
    """One registered cell.

    Attributes:
        env_id: Gymnasium id, ``<namespace>/<Name>-v<N>`` (``robocell/`` for the built-in
            cells).
        entry_point: ``module:Class`` of the env.
        max_episode_steps: the cell's time limit in env steps.
        reward_threshold: return of a solved episode (Gymnasium's ``reward_threshold``).
        summary: one line for ``robocell envs``.
        controller: ``module:Class`` of the scripted controller (built with the env), or
            ``""`` for none.
        line_parameters: the cell's plant parameters (env kwargs that drift in production).
    """

    env_id: str
    entry_point: str
    max_episode_steps: int
    reward_threshold: float
    summary: str
    controller: str
    line_parameters: tuple[LineParameter, ...] = ()
