"""The one place that builds a cell: ``gymnasium.make`` plus the episode wrapper.

Training, evaluation, export, certification and the CLI all call :func:`make_cell`, so every
env they use reports the same ``episode_metrics``. :func:`make_controller` builds a cell's
scripted controller the same way for all of them.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from robocell.envs.core import CellEnv
from robocell.errors import RobocellError
from robocell.schema import SchemaError


class EpisodeMetrics(gym.Wrapper):
    """Gives a plain Gymnasium env the cells' ``info`` contract in its simplest form.

    At episode end ``info["episode_metrics"]`` holds ``success`` (the env's ``is_success``
    if it reports one, else 0), ``episode_steps`` and ``return/reward``, so any registered
    env can be trained, logged, exported and evaluated like a cell. Cells report their own.
    """

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset the episode sums."""
        self._steps, self._return = 0, 0.0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step, and add ``episode_metrics`` on the last step if the env did not."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._steps += 1
        self._return += float(reward)
        if (terminated or truncated) and "episode_metrics" not in info:
            info = {**info, "episode_metrics": {
                "success": float(bool(info.get("is_success", False))),
                "episode_steps": float(self._steps),
                "return/reward": self._return,
            }}  # fmt: skip
        return obs, reward, terminated, truncated, info


def make_cell(
    env_id: str, env_kwargs: dict[str, Any] | None = None, render_mode: str | None = None
) -> gym.Env:
    """``gymnasium.make`` with the cells registered; non-cells get :class:`EpisodeMetrics`.

    The plug-in cells are discovered first, also in a fresh worker process. An unknown id
    raises RobocellError; kwargs the env refuses raise a SchemaError naming ``env_kwargs``.
    """
    from robocell.envs import discover_cells

    discover_cells()
    kwargs = dict(env_kwargs or {})
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    try:
        env = gym.make(env_id, **kwargs)
    except gym.error.Error as exc:
        raise RobocellError(f"cannot make {env_id!r}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise SchemaError("env_kwargs", f"{env_id} refused them: {exc}") from None
    return env if isinstance(env.unwrapped, CellEnv) else EpisodeMetrics(env)


class ScriptedController(Protocol):
    """A controller: ``reset()`` at the start of an episode, then ``obs -> action``."""

    def reset(self) -> None:
        """Forget the previous episode."""

    def __call__(self, obs: Any) -> np.ndarray:
        """The action for an observation."""


def make_controller(env_id: str, env: Any) -> ScriptedController:
    """The scripted controller of a cell, built for ``env`` (its spaces and constants).

    Scripted controllers see only the observation; they prove each cell solvable and are the
    bar a trained policy must beat on time and energy (``robocell baseline ENV_ID``).
    """
    from robocell.envs import CELLS

    known = [cell_id for cell_id, cell in CELLS.items() if cell.controller]
    if env_id not in known:
        raise RobocellError(f"no scripted controller for {env_id!r} (known: {', '.join(known)})")
    module, name = CELLS[env_id].controller.split(":")
    return getattr(importlib.import_module(module), name)(env)
