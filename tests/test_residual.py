"""Residual RL: controller + scaled residual in the env, in the reference and in one ONNX graph."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from robocell.agents.bundle import inference_session, load_bundle
from robocell.agents.bundle.manifest import PARITY_ATOL, PARITY_RTOL
from robocell.agents.export import ExportSource, TorchPolicy, export_model
from robocell.agents.residual import ResidualAction, residual_model
from robocell.agents.scripted import scripted_weld_graph, vector_policy_model
from robocell.envs.rollout import run_episode
from robocell.envs.weld.controller import ScriptedWelder
from robocell.schema import SchemaError
from robocell.train.config import RunConfig, config_from_dict
from robocell.train.vec_env import make_run_env, make_vec_env, residual_of

WELD_ID = "robocell/WeldSeam-v1"
SCALE = [0.2, 0.05, 0.05, 0.0]


def _config(**changes: Any) -> RunConfig:
    data = {
        "env_id": WELD_ID,
        "algo": "ppo",
        "total_timesteps": 128,
        "residual": {"controller": "scripted", "scale": SCALE},
        "hyperparams": {"n_steps": 64, "batch_size": 32, "n_epochs": 2},
        "policy_kwargs": {"log_std_init": -1.0},
        "normalize": {"reward": False},
        **changes,
    }
    return config_from_dict(data)


def test_residual_action_is_controller_plus_scaled_residual() -> None:
    env, plain = make_run_env(_config()), gym.make(WELD_ID)
    # One residual entry per dimension with a scale > 0: the arc stays the welder's.
    assert isinstance(env, ResidualAction) and env.action_space == gym.spaces.Box(-1, 1, (3,))
    welder, rng = ScriptedWelder(), np.random.default_rng(0)
    obs, _ = env.reset(seed=1)
    plain_obs, _ = plain.reset(seed=1)
    for _ in range(60):
        residual = rng.uniform(-1.5, 1.5, 3).astype(np.float32)  # beyond ±1 is clipped
        correction = np.float32(SCALE) * np.r_[np.clip(residual, -1, 1), 0.0]
        expected = np.clip(welder(obs) + correction, -1, 1)
        obs, _, _, _, info = env.step(residual)
        np.testing.assert_array_equal(info["residual_action"], expected.astype(np.float32))
        plain_obs, *_ = plain.step(expected)
        np.testing.assert_array_equal(obs, plain_obs)  # the env executed exactly that
    env.close()
    plain.close()


def test_zero_residual_is_the_scripted_welder() -> None:
    env, plain = make_run_env(_config()), gym.make(WELD_ID)
    with_residual = run_episode(env, lambda obs: np.zeros(3, np.float32), seed=2)
    scripted = run_episode(plain, ScriptedWelder(), seed=2)
    env.close()
    plain.close()
    assert with_residual == scripted


def _constant_policy(residual: list[float]) -> onnx.ModelProto:
    """A stand-in for a trained graph: ``action`` = the same residual for every observation."""
    inits = [
        numpy_helper.from_array(np.zeros((16, len(residual)), np.float32), "zero_weights"),
        numpy_helper.from_array(np.array(residual, np.float32), "bias"),
    ]
    nodes = [
        helper.make_node("MatMul", ["obs", "zero_weights"], ["zeros"]),
        helper.make_node("Add", ["zeros", "bias"], ["action"]),
    ]
    return vector_policy_model(nodes, inits, "constant", 16, len(residual))


def test_one_graph_computes_controller_plus_clipped_residual() -> None:
    residual = [3.0, -0.5, 0.4]  # travel beyond +1: clipped to +1 before scaling
    scale = np.float32([0.8, 0.05, 0.05, 0.0])  # 0.45 + 0.8 > 1: the action is clipped too
    model = residual_model(
        _constant_policy(residual), scripted_weld_graph(), scale, -np.ones(4), np.ones(4)
    )
    assert len(model.graph.input) == 1 and [o.name for o in model.graph.output] == ["action"]
    assert any(node.name.startswith("controller/") for node in model.graph.node)
    session = inference_session(model.SerializeToString())
    env, welder = gym.make(WELD_ID), ScriptedWelder()
    obs, _ = env.reset(seed=3)
    observations = []
    for _ in range(80):
        observations.append(obs)
        obs, *_ = env.step(welder(obs))
    env.close()
    batch = np.stack(observations)
    got = session.run(["action"], {"obs": batch})[0]
    controller = np.stack([welder(row) for row in batch])
    correction = scale * np.r_[np.clip(np.float32(residual), -1, 1), 0.0]
    expected = np.clip(controller + correction, -1, 1)
    np.testing.assert_array_equal(got, expected.astype(np.float32))
    assert set(got[:, 0].tolist()) == {np.float32(0.8).item(), 1.0}  # before, while travelling


@pytest.fixture(scope="module")
def residual_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[ExportSource, Any]:
    import torch

    from robocell.agents.algos import build_model
    from robocell.train.resume import normalizer_of

    torch.set_num_threads(1)
    config = _config()
    venv = make_vec_env(config)
    model = build_model(config, venv)
    model.learn(config.total_timesteps)
    source = ExportSource(model, normalizer_of(venv), WELD_ID, {}, "ppo", "tiny-residual",
                          "ab" * 32, "best/model.zip", residual_of(config))  # fmt: skip
    venv.close()
    bundle_dir = tmp_path_factory.mktemp("bundles") / "residual"
    return source, export_model(source, bundle_dir, closed_loop_episodes=2)


def test_residual_export_passes_parity_as_one_graph(residual_export: tuple) -> None:
    source, report = residual_export
    assert report.parity_observations >= 1000 and report.worst_ratio <= 1.0
    assert report.closed_loop_matches == len(report.closed_loop) == 2
    bundle = load_bundle(report.bundle_dir)
    assert bundle.manifest["algo"] == "ppo+residual:scripted"
    graph = onnx.load(str(Path(report.bundle_dir) / "policy.onnx")).graph
    assert any(node.name.startswith("controller/") for node in graph.node)
    welder = ScriptedWelder()
    residual = TorchPolicy(source.model, source.normalizer)
    env = gym.make(WELD_ID)
    env.action_space.seed(4)
    obs, _ = env.reset(seed=4)
    for _ in range(100):
        correction = np.float32(SCALE) * np.r_[residual(obs), 0.0]
        expected = np.clip(welder(obs) + correction, -1, 1)
        got = bundle.act(obs)
        assert np.all(np.abs(got - expected) <= PARITY_ATOL + PARITY_RTOL * np.abs(expected))
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()


@pytest.mark.parametrize(
    ("residual", "extra", "message"),
    [
        ({"scale": -0.1}, {}, "residual.scale: must be >= 0"),
        ({"scale": [0.0, 0.0]}, {}, "residual.scale: must be >= 0 and not all 0"),
        ({"controller": "pid"}, {}, "residual.controller: must be one of"),
        ({"scale": 0.2}, {"pretrain": {}}, "residual: residual RL starts as the controller"),
        ({"scale": 0.2}, {"env_id": "robocell/PegInsert-v0"}, "residual.controller"),
    ],
)
def test_residual_config_is_checked(residual: dict, extra: dict, message: str) -> None:
    with pytest.raises(SchemaError, match=message.replace("(", r"\(")):
        _config(residual=residual, **extra)


def test_residual_scale_must_fit_the_action_space() -> None:
    with pytest.raises(SchemaError, match=r"residual.scale: expected a number >= 0 or 4"):
        make_run_env(_config(residual={"scale": [0.1, 0.1]}))


def test_residual_run_trains_evaluates_and_exports(tmp_path: Path) -> None:
    from robocell.cli import main

    config = {
        "env_id": WELD_ID,
        "algo": "ppo",
        "total_timesteps": 256,
        "env_kwargs": {"gamma": 0.99, "shaping_weight": 0.0},
        "residual": {"controller": "scripted", "scale": [0.2, 0.0, 0.0, 0.0]},
        "hyperparams": {"n_steps": 128, "batch_size": 64, "n_epochs": 1},
        "policy_kwargs": {"net_arch": [16, 16], "log_std_init": -3.0},
        "eval_freq": 256,
        "eval_episodes": 1,
    }
    path = tmp_path / "residual.yaml"
    path.write_text(json.dumps(config))
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    assert main(["train", str(path), "--run-dir", str(run), "--quiet"]) == 0
    assert main(["eval", str(run), "--episodes", "1", "--json"]) == 0
    assert main(["export", str(run), "-o", str(bundle)]) == 0
    policy = load_bundle(bundle)
    env = policy.make_env()
    metrics = run_episode(env, policy, seed=2_000_000)
    env.close()
    assert metrics["success"] == 1.0  # a barely trained residual still welds: it is the welder


@pytest.mark.parametrize("algo", ["ppo", "sac", "td3"])
def test_a_fresh_residual_policy_acts_as_the_controller(algo: str) -> None:
    from robocell.agents.algos import build_model, zero_action_head

    hyperparams = {"n_steps": 64, "batch_size": 32} if algo == "ppo" else {"buffer_size": 1000}
    config = _config(algo=algo, hyperparams=hyperparams, policy_kwargs={})
    venv = make_vec_env(config)
    model = build_model(config, venv)
    obs = venv.reset()
    assert np.any(model.predict(obs, deterministic=True)[0] != 0.0)  # random init first
    zero_action_head(model)
    venv.close()
    residual, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(residual, np.zeros_like(residual))
    if algo == "td3":  # the target actor starts where the actor does
        target = model.policy.actor_target(model.policy.obs_to_tensor(obs)[0])
        assert float(target.detach().abs().max()) == 0.0
