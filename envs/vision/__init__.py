"""The vision sorting cell: task, env assembly, classical sorter, scene, camera, pick-place."""

from robocell.envs.spec import CellSpec
from robocell.envs.vision.plant import LINE_PARAMETERS

CELL = CellSpec(
    "robocell/VisionSort-v1",
    "robocell.envs.vision.env:VisionSortEnv",
    max_episode_steps=7,  # the attempt budget of the largest tray: 5 parts + 2
    reward_threshold=2.5,  # sorting the smallest tray (3 parts) right returns about 2.7
    summary="Sort good and defective parts into OK/NG bins from an overhead camera image.",
    controller="robocell.envs.vision.controller:ScriptedSorter",
    line_parameters=LINE_PARAMETERS,
)
