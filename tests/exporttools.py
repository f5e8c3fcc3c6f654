"""Helpers of the export tests: a fast image cell and tiny trained models.

``distil_scripted_welder`` fits a PPO policy to the weld cell's scripted controller by
regression (a few seconds), which gives a weld policy that succeeds on some seeds and fails
on others, so the closed-loop test compares both outcomes.

``ToySort`` stands in for an image cell while keeping tests fast: a camera image (uint8,
channel-first or channel-last) shows a bright target, the state vector holds the cursor, and
the policy moves the cursor onto the target (Box velocity or Discrete moves). It has the
cell contract export relies on: ``is_success``, ``episode_metrics``, ``observation_fields``
and ``action_fields``, ``control_period_s`` and ``rgb_array`` rendering.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import robocell  # noqa: F401  (registers the cells)
from robocell.agents.export import ExportSource
from robocell.normalizer import NormalizerStats, RunningStats

TOY_ID = "robocell-test/ToySort-v0"
WELD_ID = "robocell/WeldSeam-v1"
IMAGE_SIZE = 36  # the smallest image SB3's NatureCNN takes
MOVES = np.array([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]], dtype=np.float64)


class ToySort(gym.Env):
    """Move a cursor onto a target seen only in the image (see the module docstring)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}
    control_period_s = 0.1
    max_steps = 20
    reach = 0.2

    def __init__(
        self,
        channels_last: bool = False,
        discrete: bool = False,
        describe: bool = True,
        render_mode: str | None = None,
    ) -> None:
        shape = (IMAGE_SIZE, IMAGE_SIZE, 3) if channels_last else (3, IMAGE_SIZE, IMAGE_SIZE)
        self.channels_last = channels_last
        self.observation_space = spaces.Dict(
            {
                "image": spaces.Box(0, 255, shape, np.uint8),
                "state": spaces.Box(-np.inf, np.inf, (3,), np.float32),
            }
        )
        self.action_space = spaces.Discrete(5) if discrete else spaces.Box(-1, 1, (2,), np.float32)
        self.render_mode = render_mode
        if describe:
            self.observation_fields = {
                "state": [
                    {"name": "cursor_x", "unit": "m"},
                    {"name": "cursor_y", "unit": "m"},
                    {"name": "time_left", "unit": "s"},
                ]
            }
            if not discrete:
                self.action_fields = [
                    {"name": "velocity_x", "unit": "m/s", "scale": 0.5},
                    {"name": "velocity_y", "unit": "m/s", "scale": 0.5},
                ]

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        """A new target; the cursor starts in the middle."""
        super().reset(seed=seed)
        self.target = self.np_random.uniform(0.1, 0.9, 2)
        self.cursor = np.array([0.5, 0.5])
        self.steps = 0
        return self._obs(), {"is_success": False}

    def step(self, action: Any) -> tuple:
        """Move the cursor by at most 0.05 per axis."""
        if isinstance(self.action_space, spaces.Discrete):
            move = MOVES[int(action)]
        else:
            move = np.clip(np.asarray(action, dtype=np.float64), -1, 1)
        self.cursor = np.clip(self.cursor + 0.05 * move, 0.0, 1.0)
        self.steps += 1
        distance = float(np.linalg.norm(self.cursor - self.target))
        success = distance < self.reach
        truncated = not success and self.steps >= self.max_steps
        info: dict[str, Any] = {"is_success": success}
        if success or truncated:
            info["episode_metrics"] = {
                "success": float(success),
                "final_distance": distance,
                "episode_steps": float(self.steps),
            }
        return self._obs(), -distance, success, truncated, info

    def _obs(self) -> dict[str, np.ndarray]:
        image = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), 30, np.uint8)
        row, col = (self.target * (IMAGE_SIZE - 4)).astype(int)
        image[row : row + 4, col : col + 4] = (250, 220, 40)
        if not self.channels_last:
            image = np.ascontiguousarray(image.transpose(2, 0, 1))
        time_left = (self.max_steps - self.steps) * self.control_period_s
        return {"image": image, "state": np.array([*self.cursor, time_left], np.float32)}

    def render(self) -> np.ndarray:
        """The camera image with the cursor and a step counter, channel-last, 4× larger."""
        image = self._obs()["image"]
        image = image.copy() if self.channels_last else image.transpose(1, 2, 0).copy()
        row, col = (self.cursor * (IMAGE_SIZE - 2)).astype(int)
        image[row : row + 2, col : col + 2] = 255
        image[-1, : self.steps] = (0, 200, 255)  # every frame differs, none is merged
        return np.kron(image, np.ones((4, 4, 1), np.uint8))


if TOY_ID not in gym.registry:
    gym.register(TOY_ID, entry_point=ToySort, max_episode_steps=ToySort.max_steps)


def train_tiny(
    env_id: str,
    algo: str,
    env_kwargs: dict[str, Any] | None = None,
    steps: int = 128,
    policy: Any = None,
    **algo_kwargs: Any,
) -> ExportSource:
    """A model trained for a few steps with observation normalisation, as a run would be.

    ``policy`` defaults to SB3's MultiInputPolicy or MlpPolicy for the observation space.
    """
    import torch
    from sb3_contrib import TQC
    from stable_baselines3 import PPO, SAC, TD3
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    env_kwargs = env_kwargs or {}
    venv = make_vec_env(env_id, n_envs=1, seed=0, env_kwargs=env_kwargs)
    keys = ["state"] if isinstance(venv.observation_space, spaces.Dict) else None
    venv = VecNormalize(venv, norm_reward=False, norm_obs_keys=keys)
    if policy is None:
        policy = "MultiInputPolicy" if keys else "MlpPolicy"
    if algo == "ppo":
        settings = {"n_steps": 64, "batch_size": 32, "n_epochs": 2}
    else:
        settings = {"learning_starts": 32, "batch_size": 32, "buffer_size": 2000}
    algo_class = {"ppo": PPO, "sac": SAC, "td3": TD3, "tqc": TQC}[algo]
    model = algo_class(policy, venv, seed=0, device="cpu", **settings, **algo_kwargs)
    model.learn(steps)
    stats = NormalizerStats.from_vecnormalize(venv)
    digest = "ab" * 32
    return ExportSource(
        model, stats, env_id, env_kwargs, algo, f"tiny-{algo}", digest, "best/model.zip"
    )


def distil_scripted_welder(episodes: int = 8, epochs: int = 250) -> ExportSource:
    """A PPO MlpPolicy regressed onto ScriptedWelder's actions, with its normaliser."""
    import torch
    from stable_baselines3 import PPO

    from robocell.envs.weld.controller import ScriptedWelder

    torch.set_num_threads(1)
    torch.manual_seed(0)
    env, expert = gym.make(WELD_ID), ScriptedWelder()
    observations, actions = _expert_data(env, expert, episodes)
    stats = NormalizerStats(
        10.0,
        1e-8,
        RunningStats(
            observations.mean(0).astype(np.float64),
            observations.var(0).astype(np.float64),
            float(len(observations)),
        ),
    )
    model = PPO("MlpPolicy", env, seed=0, device="cpu", policy_kwargs={"net_arch": [64, 64]})
    policy = model.policy
    inputs = torch.as_tensor(stats.normalize(observations))
    targets = torch.as_tensor(actions)
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    for _ in range(epochs):
        for batch in torch.randperm(len(inputs)).split(256):
            features = policy.extract_features(inputs[batch], policy.pi_features_extractor)
            mean = policy.action_net(policy.mlp_extractor.forward_actor(features))
            loss = ((mean - targets[batch]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    env.close()
    return ExportSource(model, stats, WELD_ID, {}, "ppo", "distilled", "cd" * 32, "best/model.zip")


def _expert_data(env: gym.Env, expert: Any, episodes: int) -> tuple[np.ndarray, np.ndarray]:
    # Every other episode executes noisy actions (labelled with the clean ones), so the
    # data covers recoveries from off-seam states, not only the expert's own path.
    rng = np.random.default_rng(0)
    observations, actions = [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=100 + episode)
        noise, done = 0.3 * (episode % 2), False
        while not done:
            action = np.asarray(expert(obs), dtype=np.float32)
            observations.append(obs)
            actions.append(action)
            executed = np.clip(action + rng.normal(0.0, noise, 4), -1, 1).astype(np.float32)
            obs, _, terminated, truncated, _ = env.step(executed)
            done = terminated or truncated
    return np.asarray(observations), np.asarray(actions)
