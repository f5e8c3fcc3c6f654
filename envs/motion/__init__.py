"""The motion-control cell: transfer parts between stations within a takt (KUKA iiwa).

Written with the public API only (:mod:`robocell.cells`), as a plug-in cell would be.
"""

from robocell.cells import CellSpec
from robocell.envs.motion.power import LINE_PARAMETERS

CELL = CellSpec(
    "robocell/MotionTransfer-v0",
    "robocell.envs.motion.env:MotionTransferEnv",
    max_episode_steps=90,
    reward_threshold=4.0,  # a successful cycle returns 4.5–7.2 at the default energy weight
    summary="Transfer parts between stations within a takt at least energy (KUKA iiwa).",
    controller="robocell.envs.motion.controller:FullSpeedStandby",
    line_parameters=LINE_PARAMETERS,
)
