"""Environments of a training run: the vectorised training envs and the evaluation env."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from robocell.envs.core import CellEnv
from robocell.errors import RobocellError
from robocell.schema import SchemaError
from robocell.train.config import RunConfig


def make_env(config: RunConfig, render: bool = False) -> gym.Env:
    """One env of the run's cell; bad ``env_kwargs`` raise a SchemaError naming them."""
    import robocell.envs  # noqa: F401  (registers the cells)

    kwargs = dict(config.env_kwargs)
    if render:
        kwargs["render_mode"] = "rgb_array"
    try:
        env = gym.make(config.env_id, **kwargs)
    except (TypeError, ValueError) as exc:
        raise SchemaError("env_kwargs", f"{config.env_id} refused them: {exc}") from None
    if not isinstance(env.unwrapped, CellEnv):
        env = EpisodeMetrics(env)
    return env if config.residual is None else residual_env(config, env)


def residual_env(config: RunConfig, env: gym.Env) -> gym.Env:
    """``env`` acting controller + residual: the policy's actions are residuals in [−1, 1]."""
    from robocell.agents.residual import ResidualAction, scale_vector
    from robocell.envs.baselines import make_baseline

    assert config.residual is not None
    try:
        scale = scale_vector(config.residual.scale, env.action_space.shape[0])
    except RobocellError as exc:
        env.close()
        raise SchemaError("residual.scale", str(exc).split(": ", 1)[-1]) from None
    return ResidualAction(env, make_baseline(config.env_id, env.unwrapped), scale)


class EpisodeMetrics(gym.Wrapper):
    """Gives a plain Gymnasium env the cells' ``info`` contract in its simplest form.

    At episode end ``info["episode_metrics"]`` holds ``success`` (the env's ``is_success``
    if it reports one, else 0), ``episode_steps`` and ``return/reward``, so any registered
    env can be trained, logged and evaluated like a cell.
    """

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset the episode sums."""
        self._steps, self._return = 0, 0.0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step, and add ``episode_metrics`` on the last step."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._steps += 1
        self._return += float(reward)
        if terminated or truncated:
            info = {**info, "episode_metrics": {
                "success": float(bool(info.get("is_success", False))),
                "episode_steps": float(self._steps),
                "return/reward": self._return,
            }}  # fmt: skip
        return obs, reward, terminated, truncated, info


def probe_spaces(config: RunConfig) -> tuple[gym.Space, gym.Space]:
    """Observation and action space, from one env built (and closed) in this process."""
    env = make_env(config)
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
        return Monitor(make_env(config))

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
