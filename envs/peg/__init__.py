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

# v1: the same cell, its impedance law on Pinocchio's model of the arm, compiled.
CELL_V1 = CELL._replace(
    env_id="robocell/PegInsert-v1", entry_point="robocell.envs.peg.env:PegInsertEnvV1"
)
