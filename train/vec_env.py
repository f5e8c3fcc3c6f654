"""A run's envs: :func:`make_run_env` (one, as the run's policy acts in it) and the vectorised
training envs built from it."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from robocell.envs.make import make_cell
from robocell.errors import RobocellError
from robocell.schema import SchemaError
from robocell.train.config import RunConfig

if TYPE_CHECKING:
    from robocell.agents.residual import Residual


def make_run_env(config: RunConfig, render_mode: str | None = None) -> gym.Env:
    """The run's cell as its policy sees it: with ``residual`` set, the policy's actions are
    residuals in [−1, 1] added to the cell's scripted controller (bad kwargs or scales raise
    a SchemaError naming them)."""
    env = make_training_cell(config, render_mode)
    residual = residual_of(config)
    if residual is None:
        return env
    try:
        return residual.wrap(env)
    except RobocellError as exc:
        env.close()
        raise SchemaError("residual.scale", str(exc).split(": ", 1)[-1]) from None


def make_training_cell(config: RunConfig, render_mode: str | None = None) -> gym.Env:
    """The run's cell, with its plant drawn every episode when the config has ``randomize``."""
    env = make_cell(config.env_id, config.env_kwargs, render_mode)
    if not config.randomize:
        return env
    from robocell.train.randomize import PlantRandomization

    try:
        return PlantRandomization(env, config.randomize)
    except SchemaError:
        env.close()
        raise


def residual_of(config: RunConfig) -> Residual | None:
    """The run config's residual setup (None when the policy acts alone)."""
    if config.residual is None:
        return None
    from robocell.agents.residual import Residual

    return Residual(config.env_id, config.residual.controller, config.residual.scale)


def probe_spaces(config: RunConfig) -> tuple[gym.Space, gym.Space]:
    """Observation and action space, from one env built (and closed) in this process."""
    env = make_run_env(config)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def _env_factory(config: RunConfig, in_subprocess: bool) -> Callable[[], gym.Env]:
    def build() -> gym.Env:
        from stable_baselines3.common.monitor import Monitor

        if in_subprocess:
            # Ctrl-C reaches the whole process group; the main process saves a checkpoint
            # and then closes the workers, which must still be alive for that.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        return Monitor(make_run_env(config))

    return build


def make_vec_env(config: RunConfig) -> Any:
    """``n_envs`` training envs (dummy or subprocess), wrapped in VecNormalize when asked."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

    observation_space, _ = probe_spaces(config)
    subproc = config.vec_env == "subproc" and config.n_envs > 1
    factories = [_env_factory(config, subproc) for _ in range(config.n_envs)]
    venv = SubprocVecEnv(factories) if subproc else DummyVecEnv(factories)
    norm = config.normalize
    norm_obs = norm.obs and not _is_image(observation_space)  # images are never normalised
    if not (norm_obs or norm.reward):
        return venv
    return VecNormalize(venv, norm_obs=norm_obs, norm_reward=norm.reward,
                        clip_obs=norm.clip_obs, clip_reward=norm.clip_reward,
                        gamma=config.gamma, epsilon=norm.epsilon,
                        norm_obs_keys=normalized_keys(config, observation_space))  # fmt: skip


def _is_image(space: gym.Space) -> bool:
    from stable_baselines3.common.preprocessing import is_image_space

    return isinstance(space, gym.spaces.Box) and is_image_space(space, check_channels=False)


def normalized_keys(config: RunConfig, observation_space: gym.Space) -> list[str] | None:
    """Dict spaces: the keys to normalise (configured, else every non-image Box key)."""
    from gymnasium import spaces
    from stable_baselines3.common.preprocessing import is_image_space

    if not isinstance(observation_space, spaces.Dict) or not config.normalize.obs:
        return None
    subspaces = observation_space.spaces
    if config.normalize.obs_keys is not None:
        unknown = sorted(set(config.normalize.obs_keys) - set(subspaces))
        if unknown:
            raise SchemaError("normalize.obs_keys", f"no observation key {unknown[0]!r}")
        return list(config.normalize.obs_keys)
    return [
        key
        for key, space in subspaces.items()
        if isinstance(space, spaces.Box) and not is_image_space(space, check_channels=False)
    ]
