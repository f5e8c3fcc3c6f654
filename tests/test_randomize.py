"""Domain randomisation of the plant in training (``randomize:``); the digest without it."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from robocell.envs.vision.controller import ScriptedSorter
from robocell.schema import SchemaError
from robocell.train.config import config_digest, config_from_dict, load_config
from robocell.train.randomize import PlantRandomization
from robocell.train.vec_env import make_training_cell

ROOT = Path(__file__).resolve().parents[1]
RANGES = {"colour_jitter": [0.0, 0.25], "camera_shift_mm": [-5.0, 5.0]}


def _plant(env: gym.Env, seed: int | None) -> dict[str, float]:
    env.reset(seed=seed)
    return env.unwrapped.line_conditions()


def test_each_episode_draws_the_plant_from_its_seed() -> None:
    env = PlantRandomization(gym.make("robocell/VisionSort-v1"), RANGES)
    other = PlantRandomization(gym.make("robocell/VisionSort-v1"), RANGES)
    try:
        first = _plant(env, 5)
        draws = [_plant(env, None) for _ in range(5)]
        assert _plant(other, 5) == first  # same seed, same plant, whatever ran before
        assert [_plant(other, None) for _ in range(5)] == draws
        jitters = [d["colour_jitter"] for d in (first, *draws)]
        assert len(set(jitters)) == 6 and all(0.0 <= j <= 0.25 for j in jitters)
        shifts = np.array([[d["camera_shift_mm_x"], d["camera_shift_mm_y"]] for d in draws])
        assert np.all(np.abs(shifts) <= 5.0) and shifts[:, 0].tolist() != shifts[:, 1].tolist()
        assert _plant(env, 6)["colour_jitter"] != first["colour_jitter"]
        assert env.unwrapped.task.look.colour_jitter == _plant(env, 6)["colour_jitter"]
    finally:
        env.close()
        other.close()


def test_the_same_seed_gives_the_same_episode() -> None:
    def episode() -> list[float]:
        env = PlantRandomization(gym.make("robocell/VisionSort-v1"), RANGES)
        try:
            obs, _ = env.reset(seed=11)
            _, reward, *_ = env.step(ScriptedSorter(env.unwrapped)(obs))
            return [float(obs["image"].astype(float).sum()), float(reward)]
        finally:
            env.close()

    assert episode() == episode()


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ({"torch_offset_mm": [0.0, 1.0]}, "randomize.torch_offset_mm: not a plant parameter"),
        ({"colour_jitter": [0.0, 0.9]}, "randomize.colour_jitter: colour_jitter must be in"),
    ],
)
def test_a_bad_entry_is_refused_by_name(ranges: dict, message: str) -> None:
    config = config_from_dict({"env_id": "robocell/VisionSort-v1", "algo": "ppo",
                               "total_timesteps": 8, "randomize": ranges})  # fmt: skip
    with pytest.raises(SchemaError, match=message):
        make_training_cell(config)


@pytest.mark.parametrize(
    ("value", "message"),
    [([0.2, 0.1], r": low must be <= high"), ([0.1], r": expected \[low, high\]"),
     (["a", 0.1], r"\[0\]: expected a number")],
)  # fmt: skip
def test_the_config_checks_each_range(value: list, message: str) -> None:
    data = {"env_id": "robocell/VisionSort-v1", "algo": "ppo", "total_timesteps": 8,
            "randomize": {"colour_jitter": value}}  # fmt: skip
    with pytest.raises(SchemaError, match=f"randomize.colour_jitter{message}"):
        config_from_dict(data).validate()


def test_a_config_without_randomisation_keeps_its_shipped_digest() -> None:
    # models/weld was trained from configs/weld_ppo.yaml before `randomize` existed.
    manifest = json.loads((ROOT / "models" / "weld" / "manifest.json").read_text())
    assert (
        config_digest(load_config(ROOT / "configs" / "weld_ppo.yaml")) == manifest["config_digest"]
    )
    randomized = load_config(ROOT / "configs" / "vision_ppo.yaml")
    assert randomized.randomize and config_digest(randomized) != config_digest(
        config_from_dict({**_plain(randomized), "randomize": {}})
    )


def _plain(config: object) -> dict:
    from robocell.schema import to_dict

    return to_dict(config)
