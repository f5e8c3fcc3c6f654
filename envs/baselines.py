"""Scripted controllers, one per cell, that use only the policy's observations.

They prove each cell solvable and are the bar a trained policy must beat on time and energy.
``robocell baseline ENV_ID`` runs them.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import numpy as np

from robocell.errors import RobocellError

# env id -> "module:Class" of its scripted controller (constructed with the env).
BASELINES: dict[str, str] = {
    "robocell/WeldSeam-v0": "robocell.envs.weld:ScriptedWelder",
    "robocell/PegInsert-v0": "robocell.envs.peg_baseline:SpiralSearchInserter",
    "robocell/VisionSort-v1": "robocell.envs.vision_baseline:ScriptedSorter",
}


class ScriptedPolicy(Protocol):
    """A controller: ``reset()`` at the start of an episode, then ``obs -> action``."""

    def reset(self) -> None:
        """Forget the previous episode."""

    def __call__(self, obs: Any) -> np.ndarray:
        """The action for an observation."""


def make_baseline(env_id: str, env: Any) -> ScriptedPolicy:
    """The scripted controller of a cell, built for ``env`` (its spaces and constants)."""
    try:
        target = BASELINES[env_id]
    except KeyError:
        known = ", ".join(sorted(BASELINES))
        raise RobocellError(f"no scripted baseline for {env_id!r} (known: {known})") from None
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)(env)
