"""The assembly cell: task, env assembly, spiral search, fixture, impedance and F/T models."""

from robocell.envs.peg.plant import LINE_PARAMETERS
from robocell.envs.spec import CellSpec

CELL = CellSpec(
    "robocell/PegInsert-v0",
    "robocell.envs.peg.env:PegInsertEnv",
    max_episode_steps=300,
    reward_threshold=12.0,
    summary="Insert a peg into a chamfered hole found by touch (compliant KUKA iiwa, F/T).",
    controller="robocell.envs.peg.controller:SpiralSearchInserter",
    line_parameters=LINE_PARAMETERS,
)
