"""The input guard of every bundle: NaN, ±inf and huge inputs give the safe action and a fault
flag row by row; finite out-of-range inputs are clipped; the manifest's ranges hold on fresh
episodes; rollouts count faults and clipped observations."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from robocell.agents.bundle import load_bundle
from robocell.agents.bundle.describe import observation_inputs
from robocell.agents.scripted import export_scripted, scripted_weld_graph
from robocell.cli import main
from robocell.envs import ENV_IDS
from robocell.envs.make import make_cell, make_controller
from robocell.envs.obs_ranges import observation_ranges
from robocell.envs.rollout import CLIPPED_OBSERVATIONS, POLICY_FAULTS, run_episode

MODELS = Path(__file__).resolve().parents[1] / "models"
BAD_VALUES = (np.nan, np.inf, -np.inf, 1e30, -1e30)


@pytest.fixture(scope="module")
def scripted_weld(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly written bundle (the weld cell's scripted controller)."""
    return export_scripted("robocell/WeldSeam-v1", tmp_path_factory.mktemp("b") / "weld")


def _bundles(scripted: Path) -> list[Path]:
    return [MODELS / "weld", MODELS / "peg", MODELS / "vision", scripted]


def _observation(policy: Any) -> Any:
    env = policy.make_env()
    try:
        return env.reset(seed=2_000_000)[0]
    finally:
        env.close()


def _batch(obs: Any, rows: int) -> Any:
    if isinstance(obs, dict):
        return {key: np.stack([value] * rows) for key, value in obs.items()}
    return np.stack([obs] * rows)


def _vector_key(policy: Any) -> str | None:
    return next(
        item["key"] for item in policy.manifest["observation"] if item["layout"] == "vector"
    )


@pytest.mark.parametrize("index", range(4))
def test_bad_inputs_give_the_safe_action_and_a_fault_row_by_row(
    scripted_weld: Path, index: int
) -> None:
    policy = load_bundle(_bundles(scripted_weld)[index])
    obs = _observation(policy)
    key = _vector_key(policy)
    batch = _batch(obs, 1 + len(BAD_VALUES))
    vector = batch if key is None else batch[key]
    for row, value in enumerate(BAD_VALUES, start=1):
        vector[row, row % vector.shape[1]] = value
    actions, faults = policy.run_batch(batch)
    clean_action, clean_fault = policy.run_batch(_batch(obs, 1))
    assert faults.dtype == np.bool_
    assert faults.tolist() == [False, True, True, True, False, False]
    # Row 0 is untouched by its bad neighbours; every action is finite and in bounds.
    assert np.array_equal(actions[0], clean_action[0]) and not clean_fault[0]
    assert all(policy.action_in_bounds(action) for action in actions)
    safe = policy.manifest["action"]["safe_action"]
    for row in (1, 2, 3):
        if safe is not None:
            assert np.allclose(actions[row], np.reshape(safe, actions[row].shape))


@pytest.mark.parametrize("index", range(4))
def test_a_finite_value_beyond_the_range_acts_like_the_range_edge(
    scripted_weld: Path, index: int
) -> None:
    policy = load_bundle(_bundles(scripted_weld)[index])
    key = _vector_key(policy)
    entry = next(item for item in policy.manifest["observation"] if item["key"] == key)
    high = entry["fields"][0]["high"]
    assert high is not None
    beyond, edge = _batch(_observation(policy), 1), _batch(_observation(policy), 1)
    (beyond if key is None else beyond[key])[0, 0] = 1e30
    (edge if key is None else edge[key])[0, 0] = high
    assert np.array_equal(policy.run_batch(beyond)[0], policy.run_batch(edge)[0])
    assert not policy.run_batch(beyond)[1][0]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_fresh_scripted_and_random_episodes_stay_inside_the_measured_ranges(env_id: str) -> None:
    assert observation_ranges(env_id)
    env = make_cell(env_id)
    inputs = [entry for entry in observation_inputs(env) if entry["layout"] == "vector"]
    controller = make_controller(env_id, env.unwrapped)
    env.action_space.seed(1)
    try:
        for episode, act in enumerate([controller, lambda _obs: env.action_space.sample()]):
            obs, _ = env.reset(seed=11_000_000 + episode)
            controller.reset()
            done = False
            while not done:
                _assert_inside(obs, inputs)
                obs, _, terminated, truncated, _ = env.step(act(obs))
                done = terminated or truncated
    finally:
        env.close()


def _assert_inside(obs: Any, inputs: list[dict[str, Any]]) -> None:
    # The manifest's low/high (what export writes), field by field in the input's order.
    for entry in inputs:
        value = obs if entry["key"] is None else obs[entry["key"]]
        for field, element in zip(entry["fields"], np.ravel(value), strict=True):
            low, high = field["low"], field["high"]
            assert low <= element <= high, f"{field['name']} = {element} outside [{low}, {high}]"


class _FailingSensor(gym.Wrapper):
    """Turns one observation field NaN at step ``at`` and far out of range at the next."""

    def __init__(self, env: gym.Env, at: int) -> None:
        super().__init__(env)
        self.at, self.steps = at, 0

    def reset(self, **kwargs: Any) -> Any:
        self.steps = 0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> Any:
        obs, *rest = self.env.step(action)
        self.steps += 1
        if self.steps in (self.at, self.at + 1):
            obs = np.array(obs, copy=True)
            obs[3] = np.nan if self.steps == self.at else 1e6
        return (obs, *rest)


def test_a_rollout_counts_faults_and_clips_and_a_faulted_episode_fails() -> None:
    policy = load_bundle(MODELS / "peg")
    env = _FailingSensor(policy.make_env(), at=5)
    try:
        metrics = run_episode(env, policy, 2_000_001)
        clean = run_episode(env.env, policy, 2_000_001)
    finally:
        env.close()
    assert metrics[POLICY_FAULTS] == 1.0 and metrics[CLIPPED_OBSERVATIONS] >= 1.0
    assert metrics["success"] == 0.0
    assert clean[POLICY_FAULTS] == 0.0 and clean["success"] == 1.0


def _unguarded_weld_bundle(directory: Path) -> Path:
    """A bundle as robocell wrote it before the guard: the bare scripted graph, no fault."""
    bundle = export_scripted("robocell/WeldSeam-v1", directory)
    manifest = json.loads((bundle / "manifest.json").read_text())
    onnx_bytes = scripted_weld_graph().SerializeToString()
    (bundle / "policy.onnx").write_bytes(onnx_bytes)
    for key in ("fault", "batch"):
        manifest.pop(key)
    manifest["onnx_sha256"] = hashlib.sha256(onnx_bytes).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    (bundle / "README.md").write_text("what this bundle is\n")
    return bundle


def test_robocell_guard_rewrites_a_bundle_in_place_and_keeps_its_other_files(
    tmp_path: Path,
) -> None:
    bundle = _unguarded_weld_bundle(tmp_path / "weld")
    assert main(["guard", str(bundle), "-o", str(bundle)]) == 2  # in place needs --force
    assert main(["guard", str(bundle), "-o", str(bundle), "--force"]) == 0
    assert (bundle / "README.md").read_text() == "what this bundle is\n"
    policy = load_bundle(bundle)
    obs = _observation(policy)
    rows = _batch(obs, 2)
    rows[1][0] = np.nan
    actions, faults = policy.run_batch(rows)
    assert faults.tolist() == [False, True]
    assert np.allclose(actions[1], policy.manifest["action"]["safe_action"])


def test_robocell_guard_refuses_a_guarded_bundle_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out"
    assert main(["guard", str(MODELS / "weld"), "-o", str(target)]) != 0
    assert "already has the guard" in capsys.readouterr().err
    assert not target.exists()
