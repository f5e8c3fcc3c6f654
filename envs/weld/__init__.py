"""The welding cell: task, env assembly, scripted welder, process, seam and sensor models."""

from robocell.envs.spec import CellSpec
from robocell.envs.weld.plant import LINE_PARAMETERS

CELL = CellSpec(
    "robocell/WeldSeam-v1",
    "robocell.envs.weld.env:WeldSeamEnv",
    max_episode_steps=450,
    reward_threshold=8.5,  # a successful weld of the shortest seam returns 9.0–9.7
    summary="Arc-weld a randomised seam found with a noisy laser seam tracker (KUKA iiwa).",
    controller="robocell.envs.weld.controller:ScriptedWelder",
    line_parameters=LINE_PARAMETERS,
)
