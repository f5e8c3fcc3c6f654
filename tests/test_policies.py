"""The vision cell's pixel-wise pick policy: shapes, no dense layer over positions, equivariance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from torch import nn

from robocell.agents.policies import PickMapPolicy, grid_geometry
from robocell.schema import SchemaError
from robocell.train.config import config_from_dict

IMAGE = spaces.Box(0, 255, (3, 84, 84), np.uint8)
OBSERVATION = spaces.Dict({"image": IMAGE, "state": spaces.Box(0.0, 1.0, (2,), np.float32)})
GRID = 168
ACTION = spaces.Discrete(2 * GRID * GRID)


def _policy(**kwargs: object) -> PickMapPolicy:
    torch.manual_seed(0)
    return PickMapPolicy(OBSERVATION, ACTION, lambda _: 1e-3, **kwargs)


def _obs(images: np.ndarray, state: tuple[float, float] = (1.0, 0.0)) -> dict[str, torch.Tensor]:
    batch = len(images)
    return {
        "image": torch.as_tensor(images),
        "state": torch.as_tensor(np.tile(np.float32(state), (batch, 1))),
    }


def _tray_with_part(row: int, col: int) -> np.ndarray:
    image = np.full((3, 84, 84), 60, np.uint8)
    image[:, row : row + 11, col : col + 11] = 185  # an 11-pixel part
    image[:, row + 3 : row + 6, col + 4 : col + 7] = 15  # its mark
    return image


def test_logits_cover_every_cell_and_bin() -> None:
    policy = _policy()
    assert (policy.grid_size, policy.upsample) == (GRID, 4)
    obs = _obs(np.stack([_tray_with_part(20, 30), _tray_with_part(50, 10)]))
    with torch.no_grad():
        logits = policy.logits(obs)
        actions, values, log_prob = policy(obs, deterministic=True)
    assert logits.shape == (2, 2 * GRID * GRID)
    assert values.shape == (2, 1) and log_prob.shape == (2,)
    np.testing.assert_array_equal(actions.numpy(), logits.argmax(dim=1).numpy())
    assert torch.equal(policy._predict(obs, deterministic=True), actions)


def test_no_dense_layer_over_positions() -> None:
    policy = _policy()
    dense = [m for m in policy.modules() if isinstance(m, nn.Linear)]
    # The only dense layer is the value head on pooled channels, 2 × width → 1.
    assert [(m.in_features, m.out_features) for m in dense] == [(2 * policy.width, 1)]
    # Parameters do not grow with the grid: a bigger image keeps the same network.
    big = PickMapPolicy(
        spaces.Dict(
            {"image": spaces.Box(0, 255, (3, 128, 128), np.uint8), "state": OBSERVATION["state"]}
        ),
        spaces.Discrete(2 * 256 * 256),
        lambda _: 1e-3,
    )
    count = sum(p.numel() for p in policy.parameters())
    assert count == sum(p.numel() for p in big.parameters()) < 40_000


def test_scores_move_with_the_part() -> None:
    # Without coordinate planes the network is translation-equivariant: moving the part by
    # (2, 6) image pixels moves its scores by (4, 12) grid cells (2 cells per pixel). Group
    # normalisation's statistics stay the same while the part's influence (its 11 pixels
    # plus the 33-pixel receptive field) stays clear of the zero-padded borders.
    policy = _policy(coord_channels=False)
    with torch.no_grad():
        maps = policy.logits(_obs(np.stack([_tray_with_part(34, 34), _tray_with_part(36, 40)])))
    maps = maps.view(2, 2, GRID, GRID)
    first = maps[0, :, 50:110, 50:110]
    moved = maps[1, :, 54:114, 62:122]
    torch.testing.assert_close(first, moved, atol=1e-4, rtol=1e-4)
    assert (first.amax() - first.amin()) > 1e-2  # the part stands out: the check has teeth


def test_state_changes_the_scores() -> None:
    policy = _policy()
    images = np.stack([_tray_with_part(20, 30)])
    with torch.no_grad():
        fresh = policy.logits(_obs(images, (1.0, 0.0)))
        after_empty = policy.logits(_obs(images, (0.5, 1.0)))
    assert not torch.allclose(fresh, after_empty)


def test_grid_must_fit_the_feature_map() -> None:
    assert grid_geometry(OBSERVATION, ACTION, 2) == (GRID, 4)
    with pytest.raises(ValueError, match="square grid"):
        grid_geometry(OBSERVATION, spaces.Discrete(2 * 168 * 167), 2)
    with pytest.raises(ValueError, match="whole multiple"):
        grid_geometry(OBSERVATION, spaces.Discrete(2 * 100 * 100), 2)
    with pytest.raises(ValueError, match="Discrete"):
        PickMapPolicy(OBSERVATION, spaces.Box(-1, 1, (3,)), lambda _: 1e-3)


def test_config_names_the_policy_for_ppo_only() -> None:
    data = {"env_id": "robocell/VisionSort-v1", "algo": "ppo", "total_timesteps": 8,
            "policy": "PickMapPolicy", "policy_kwargs": {"width": 16}}  # fmt: skip
    assert config_from_dict(data).policy == "PickMapPolicy"
    with pytest.raises(SchemaError, match="policy: PickMapPolicy works with ppo only"):
        config_from_dict({**data, "algo": "sac"})


def test_saved_model_loads_with_the_same_scores(tmp_path: Path) -> None:
    import gymnasium as gym

    import robocell.envs  # noqa: F401

    env = gym.make("robocell/VisionSort-v1", parts=(3, 3))
    model = PPO(PickMapPolicy, env, n_steps=4, batch_size=4, n_epochs=1, seed=0,
                policy_kwargs={"width": 16}, device="cpu")  # fmt: skip
    model.learn(4)
    model.save(tmp_path / "model.zip")
    loaded = PPO.load(tmp_path / "model.zip", device="cpu")
    env.close()
    assert isinstance(loaded.policy, PickMapPolicy) and loaded.policy.width == 16
    obs = _obs(np.stack([_tray_with_part(20, 30)]))
    with torch.no_grad():
        torch.testing.assert_close(loaded.policy.logits(obs), model.policy.logits(obs))
