"""Export of trained policies to bundles: parity, closed loop, manifest, CLI, torch-free rollout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from exporttools import TOY_ID, WELD_ID, distil_scripted_welder, train_tiny

from robocell.agents.bundle import load_bundle
from robocell.agents.bundle.manifest import PARITY_ATOL, PARITY_RTOL, parse_manifest
from robocell.agents.export import (
    ClippedReference,
    ExportReport,
    ExportSource,
    TorchPolicy,
    export_model,
)
from robocell.agents.onnx_graph import InputLayout, PolicyGraph
from robocell.agents.parity import check_parity
from robocell.agents.policies import PickMapPolicy
from robocell.cli import main
from robocell.envs.make import make_cell
from robocell.envs.rollout import run_episode
from robocell.envs.weld.controller import ScriptedWelder
from robocell.errors import RobocellError
from robocell.schema import to_dict
from robocell.util import canonical_json, sha256_file

# (env id, env kwargs, algorithm) per exported model: every registered cell (the weld policy is
# distilled from the scripted welder, so that it both succeeds and fails), and an image-cell
# stand-in with channel-first and channel-last images, Box and Discrete actions, and every
# algorithm a run can use (PPO also with gSDE, whose mode goes through SB3's own _predict).
# The vision cell exports its pixel-wise pick policy (an arg-max over 56,448 grid cells).
CASES = {
    "weld-distilled": (WELD_ID, {}, "distilled"),
    "weld-sac": (WELD_ID, {}, "sac"),
    "peg-ppo": ("robocell/PegInsert-v0", {}, "ppo"),
    "vision-pickmap-ppo": ("robocell/VisionSort-v1", {}, "pickmap"),
    "image-chw-ppo": (TOY_ID, {}, "ppo"),
    "image-hwc-discrete-ppo": (TOY_ID, {"channels_last": True, "discrete": True}, "ppo"),
    "image-chw-sac": (TOY_ID, {}, "sac"),
    "image-chw-td3": (TOY_ID, {}, "td3"),
    "image-chw-tqc": (TOY_ID, {}, "tqc"),
    "image-chw-ppo-gsde": (TOY_ID, {}, "ppo-gsde"),
}
SLOW_CASES = ("peg-ppo", "vision-pickmap-ppo")


@pytest.fixture(
    scope="module",
    params=[pytest.param(k, marks=[pytest.mark.slow] if k in SLOW_CASES else []) for k in CASES],
)
def exported(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ExportSource, ExportReport]:
    env_id, env_kwargs, algo = CASES[request.param]
    if algo == "distilled":
        source = distil_scripted_welder()
    elif algo == "pickmap":  # the vision cell's fully-convolutional pick over the image
        source = train_tiny(env_id, "ppo", env_kwargs, policy=PickMapPolicy)
    elif algo == "ppo-gsde":  # a state-dependent-noise distribution, squashed
        source = train_tiny(
            env_id, "ppo", env_kwargs, use_sde=True, policy_kwargs={"squash_output": True}
        )
    else:
        source = train_tiny(env_id, algo, env_kwargs)
    bundle_dir = tmp_path_factory.mktemp("bundles") / request.param
    return source, export_model(source, bundle_dir, closed_loop_episodes=2)


def _fresh_observations(source: ExportSource, n: int, seed: int) -> list:
    """Observations from random-action episodes, unlike anything the export recorded."""
    env = make_cell(source.env_id, source.env_kwargs)
    env.action_space.seed(seed)
    observations, (obs, _) = [], env.reset(seed=seed)
    while len(observations) < n:
        observations.append(obs)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return observations


def test_bundle_acts_like_the_torch_pipeline(exported: tuple) -> None:
    source, report = exported
    assert report.parity_observations >= 1000 and report.boundary_cases >= 3
    assert report.max_abs_diff >= 0.0 and report.worst_ratio <= 1.0
    policy = load_bundle(report.bundle_dir)
    # The bundle clips to the manifest's observation ranges before the policy: so does this.
    torch_policy = TorchPolicy(source.model, source.normalizer)
    reference = ClippedReference(torch_policy, policy.manifest["observation"])
    for obs in _fresh_observations(source, 100, seed=7):
        expected = np.asarray(reference(obs), dtype=np.float64)
        got = np.asarray(policy.act(obs), dtype=np.float64)
        assert got.shape == expected.shape
        assert np.all(np.abs(got - expected) <= PARITY_ATOL + PARITY_RTOL * np.abs(expected))


def test_bundle_reproduces_the_models_episodes(exported: tuple) -> None:
    source, report = exported
    policy = load_bundle(report.bundle_dir)
    # The bundle clips to the manifest's observation ranges before the policy: so does this.
    torch_policy = TorchPolicy(source.model, source.normalizer)
    reference = ClippedReference(torch_policy, policy.manifest["observation"])
    assert report.closed_loop_matches == len(report.closed_loop) == 2
    env = policy.make_env()
    # Robot-cell episodes are slow (weld: up to 450 steps); the distilled welder both
    # succeeds and fails; a vision episode is at most 7 pick-and-place steps.
    episodes = {TOY_ID: 12, "robocell/VisionSort-v1": 6}.get(source.env_id, 2)
    episodes = 6 if source.run_id == "distilled" else episodes
    outcomes = set()
    for seed in range(episodes):
        torch_metrics = run_episode(env, reference, seed)
        bundle_metrics = run_episode(env, policy, seed)
        assert bundle_metrics["success"] == torch_metrics["success"], seed
        assert bundle_metrics["episode_steps"] == torch_metrics["episode_steps"], seed
        for key, value in torch_metrics.items():
            assert bundle_metrics[key] == pytest.approx(value, rel=1e-3, abs=1e-3), (seed, key)
        outcomes.add(torch_metrics["success"])
    env.close()
    if source.run_id == "distilled":  # else this test would not compare a success at all
        assert outcomes == {0.0, 1.0}


def test_manifest_describes_the_cell(exported: tuple) -> None:
    source, report = exported
    manifest_path = report.bundle_dir / "manifest.json"
    data = json.loads(manifest_path.read_text())
    manifest = parse_manifest(data)
    assert report.manifest_sha256 == sha256_file(manifest_path)
    assert (
        manifest.onnx_sha256 == report.onnx_sha256 == sha256_file(report.bundle_dir / "policy.onnx")
    )
    assert (manifest.env_id, manifest.env_kwargs, manifest.env_version) == (
        source.env_id,
        source.env_kwargs,
        int(source.env_id.rsplit("-v", 1)[1]),
    )
    assert (manifest.run_id, manifest.config_digest, manifest.algo) == (
        source.run_id,
        source.config_digest,
        source.algo,
    )
    assert manifest.onnx_opset >= 17 and manifest.normalization_in_graph
    assert manifest.parity.observations == report.parity_observations
    env = make_cell(source.env_id, source.env_kwargs)
    cell = getattr(env.unwrapped, "task", env.unwrapped)  # robot cells keep it on the task
    assert manifest.control_period_s == cell.control_period_s > 0
    space = env.action_space
    if hasattr(space, "low"):
        assert [f.low for f in manifest.action.fields] == space.low.tolist()
        assert [f.high for f in manifest.action.fields] == space.high.tolist()
    else:
        assert [(f.low, f.high) for f in manifest.action.fields] == [(0.0, space.n - 1.0)]
    grid = getattr(env.unwrapped, "action_grid", None)
    assert (to_dict(manifest.action.grid) if manifest.action.grid else None) == grid
    model = onnx.load(report.bundle_dir / "policy.onnx")
    props = {prop.key: prop.value for prop in model.metadata_props}
    assert props.pop("env_kwargs") == canonical_json(source.env_kwargs).decode()
    assert set(props) == set(data) - {"onnx_sha256", "env_kwargs"}
    assert json.loads(props["observation"]) == data["observation"]
    env.close()


def test_weld_manifest_has_named_fields_units_and_joints(tmp_path: Path) -> None:
    from robocell.envs.weld.env import WeldSeamEnv
    from robocell.envs.weld.task import OBSERVATION_FIELDS

    source = train_tiny(WELD_ID, "ppo", steps=64)
    export_model(source, tmp_path / "b", closed_loop_episodes=0)
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    (obs,) = manifest["observation"]
    assert (obs["name"], obs["shape"], obs["layout"]) == ("obs", [16], "vector")
    assert [(f["name"], f["unit"]) for f in obs["fields"]] == [
        (f["name"], f["unit"]) for f in OBSERVATION_FIELDS
    ]
    fields = manifest["action"]["fields"]
    assert [(f["name"], f["unit"], f["scale"]) for f in fields] == [
        (f["name"], f["unit"], f["scale"]) for f in WeldSeamEnv.action_fields
    ]
    assert [(f["low"], f["high"]) for f in fields] == [(-1.0, 1.0)] * 4
    assert manifest["joint_names"] == [f"lbr_iiwa_joint_{i}" for i in range(1, 8)]


def test_dict_inputs_are_named_per_key_and_generic_fields_are_flagged(tmp_path: Path) -> None:
    source = train_tiny(TOY_ID, "ppo", {"describe": False, "channels_last": True}, steps=64)
    report = export_model(source, tmp_path / "b", closed_loop_episodes=0)
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    image, state = manifest["observation"]
    assert (image["name"], image["dtype"], image["shape"], image["layout"]) == (
        "obs.image",
        "uint8",
        [36, 36, 3],
        "HWC",
    )
    assert state["name"] == "obs.state" and state["generic_fields"]
    assert [f["name"] for f in state["fields"]] == ["obs[0]", "obs[1]", "obs[2]"]
    assert manifest["action"]["generic_fields"]
    assert len(report.notes) == 2 and "does not describe" in report.notes[0]
    model = onnx.load(tmp_path / "b" / "policy.onnx")
    assert [i.name for i in model.graph.input] == ["obs.image", "obs.state"]


def test_export_fails_loudly_when_the_graph_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = train_tiny(TOY_ID, "ppo", steps=64)
    original = PolicyGraph.forward

    def off_by_a_little(self: PolicyGraph, *inputs: object) -> object:
        return original(self, *inputs) * 0.99

    monkeypatch.setattr(PolicyGraph, "forward", off_by_a_little)
    with pytest.raises(RobocellError, match=r"parity check failed .* no bundle written"):
        export_model(source, tmp_path / "b")
    assert not (tmp_path / "b").exists() and list(tmp_path.iterdir()) == []


class _FixedSession:
    """An onnxruntime stand-in whose graph answers every observation with ``actions``."""

    def __init__(self, actions: np.ndarray) -> None:
        self.actions = actions

    def run(self, names: list[str], feed: dict) -> list[np.ndarray]:
        return [self.actions[: len(next(iter(feed.values())))]]


class _ScoredReference:
    """A torch-side stand-in: arg-max actions of fixed action probabilities."""

    def __init__(self, probs: np.ndarray) -> None:
        self.probs = probs

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.probs[: len(batch)].argmax(axis=1)

    def action_probabilities(self, batch: np.ndarray) -> np.ndarray:
        return self.probs[: len(batch)]


def _discrete_case(offset: int) -> tuple[_FixedSession, list[InputLayout], list[np.ndarray]]:
    # A pick-grid index of ~30,000 off by one would pass a relative tolerance of 1e-3.
    expected = np.array([30_000, 41_000, 7], np.int64)
    layouts = [InputLayout("obs", None, "float32", (2,), False)]
    return _FixedSession(expected + np.array([0, offset, 0])), layouts, [np.zeros(2)] * 3


def test_discrete_parity_needs_equal_indices() -> None:
    expected = np.array([30_000, 41_000, 7], np.int64)
    session, layouts, observations = _discrete_case(0)
    figures = check_parity(session, layouts, lambda b: expected[: len(b)], observations)
    assert (figures.max_abs_diff, figures.worst_ratio, figures.argmax_ties) == (0.0, 0.0, 0)
    session, layouts, observations = _discrete_case(1)
    with pytest.raises(RobocellError, match=r"observation 1, .* discrete actions must be equal"):
        check_parity(session, layouts, lambda b: expected[: len(b)], observations)


@pytest.mark.parametrize(("runner_up", "tie"), [(0.05 - 4e-5, True), (0.05 - 8e-5, False)])
def test_discrete_parity_accepts_only_ties_of_equal_probability(
    runner_up: float, tie: bool
) -> None:
    # The graph chose cell 41,001 where torch chose 41,000; p_best = 0.05, so a tie allows
    # a gap of 1e-5 + 1e-3·0.05 = 6e-5.
    probs = np.full((3, 56_448), 1e-6)
    for row, index in enumerate([30_000, 41_000, 7]):
        probs[row, index] = 0.05
    probs[1, 41_001] = runner_up
    session, layouts, observations = _discrete_case(1)
    if tie:
        figures = check_parity(session, layouts, _ScoredReference(probs), observations)
        assert figures.argmax_ties == 1 and 0.6 < figures.worst_ratio < 0.7
        assert figures.max_abs_diff == pytest.approx(4e-5)
    else:
        with pytest.raises(RobocellError, match=r"chose 41001, torch 41000: .* differ by 8e-05"):
            check_parity(session, layouts, _ScoredReference(probs), observations)


def test_export_refuses_too_few_parity_observations_and_existing_bundles(
    tmp_path: Path,
) -> None:
    source = train_tiny(TOY_ID, "ppo", steps=64)
    with pytest.raises(RobocellError, match="at least 1000"):
        export_model(source, tmp_path / "b", parity_observations=999)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("mine")
    with pytest.raises(RobocellError, match="not empty"):
        export_model(source, tmp_path / "b")
    assert (tmp_path / "b" / "keep.txt").read_text() == "mine"


# ---------------------------------------------------------------- through the CLI
@pytest.fixture(scope="module")
def weld_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("run")
    config = root / "tiny.yaml"
    config.write_text(
        f"env_id: {WELD_ID}\nalgo: ppo\ntotal_timesteps: 128\nn_envs: 1\n"
        "hyperparams: {n_steps: 64, batch_size: 32, n_epochs: 1}\n"
        "policy_kwargs: {net_arch: [32, 32]}\n"
        "eval_freq: 128\neval_episodes: 1\ncheckpoint_freq: 64\n"
    )
    code = main(["train", str(config), "--run-dir", str(root / "run"), "--quiet"])
    assert code == 0
    return root / "run"


def test_cli_exports_a_run(weld_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from robocell.train.rundir import load_run

    code = main(
        [
            "export",
            str(weld_run),
            "--checkpoint",
            "last",
            "-o",
            str(tmp_path / "b"),
            "--closed-loop-episodes",
            "1",
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "parity:" in out and "closed loop: 1/1" in out
    report = json.loads(out.strip().splitlines()[-1])
    policy = load_bundle(tmp_path / "b")
    run = load_run(weld_run, "last")
    assert report["onnx_sha256"] == policy.onnx_sha256
    assert policy.manifest["run_id"] == "run"
    assert policy.manifest["config_digest"] == run.config_digest
    assert policy.manifest["checkpoint"].startswith("checkpoints/step_")
    assert policy.manifest["algo"] == "ppo"


def test_cli_export_errors_name_the_problem(
    weld_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["export", str(tmp_path / "nope"), "-o", str(tmp_path / "b")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("")
    assert main(["export", str(weld_run), "-o", str(tmp_path / "b")]) == 2
    assert "pass --force" in capsys.readouterr().err


def test_rollout_runs_without_torch_or_sb3(exported_weld_bundle: Path) -> None:
    script = (
        "import json, sys\n"
        "from robocell.cli import main\n"
        f"code = main(['rollout', {str(exported_weld_bundle)!r}, '--episodes', '1', '--json'])\n"
        "heavy = sorted(m for m in sys.modules\n"
        "               if m.split('.')[0] in ('torch', 'stable_baselines3', 'sb3_contrib'))\n"
        "print(json.dumps({'code': code, 'heavy': heavy}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=False
    )
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, result.stderr
    assert json.loads(lines[-1]) == {"code": 0, "heavy": []}
    summary = json.loads(lines[-2])
    assert summary["env_id"] == WELD_ID and summary["episodes"] == 1.0
    assert lines[0].startswith("seed 0: ")


@pytest.fixture(scope="module")
def exported_weld_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = train_tiny(WELD_ID, "ppo", steps=64)
    bundle = tmp_path_factory.mktemp("weld") / "bundle"
    export_model(source, bundle, closed_loop_episodes=0)
    return bundle


def test_rollout_films_a_gif(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import imageio.v3 as iio

    source = train_tiny(TOY_ID, "ppo", steps=64)
    export_model(source, tmp_path / "b", closed_loop_episodes=0)
    gif = tmp_path / "ep.gif"
    code = main(["rollout", str(tmp_path / "b"), "--episodes", "2", "--video", str(gif)])
    out = capsys.readouterr().out
    assert code == 0 and f"wrote {gif}" in out
    frames = iio.imread(gif, index=None)
    steps = int(out.split("seed 0: ")[1].split("episode_steps=")[1].split()[0])
    assert frames.shape == (steps + 1, 144, 144, 3)
    # The filmed episode reports the guard's counters like the others.
    assert (
        "seed 0: " in out and out.split("seed 0: ")[1].split("\n")[0].count("policy_faults=0") == 1
    )


@pytest.mark.parametrize("name", ["ep.avi", "ep.mp4"])
def test_rollout_refuses_video_it_cannot_write(
    exported_weld_bundle: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    writers = ("av", "imageio_ffmpeg")  # as on a machine without an mp4 writer
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda module, *a: None if module in writers else find_spec(module, *a),
    )
    video = tmp_path / name
    assert main(["rollout", str(exported_weld_bundle), "--video", str(video)]) == 2
    assert "--video" in capsys.readouterr().err and not video.exists()


def test_export_baseline_writes_the_scripted_welder_as_a_bundle(tmp_path: Path) -> None:
    assert main(["export-baseline", "robocell/WeldSeam-v1", "-o", str(tmp_path / "b")]) == 0
    bundle = load_bundle(tmp_path / "b")
    assert bundle.manifest["algo"] == "scripted"
    assert bundle.manifest["joint_names"][0] == "lbr_iiwa_joint_1"
    env = bundle.make_env()
    obs, _ = env.reset(seed=3)
    welder = ScriptedWelder(env.unwrapped)
    for _ in range(60):
        action = bundle.act(obs)
        np.testing.assert_array_equal(action, welder(obs))
        obs, *_ = env.step(action)
    env.close()
    assert main(["export-baseline", "robocell/PegInsert-v0", "-o", str(tmp_path / "p")]) == 2
    assert not (tmp_path / "p").exists()
