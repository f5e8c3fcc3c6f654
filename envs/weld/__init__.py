"""The welding cell: task, env assembly, scripted welder, process, seam and sensor models."""

from robocell.envs.spec import CellSpec

CELL = CellSpec(
    "robocell/WeldSeam-v0",
    "robocell.envs.weld.env:WeldSeamEnv",
    max_episode_steps=450,
    reward_threshold=15.0,  # a successful weld of the shortest seam returns about 15.6
    summary="Arc-weld a randomised seam found with a noisy laser seam tracker (KUKA iiwa).",
    controller="robocell.envs.weld.controller:ScriptedWelder",
)
