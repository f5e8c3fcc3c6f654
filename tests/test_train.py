"""Training runs through the real CLI: run directory, TensorBoard tags, kill -9 + resume, SIGINT.

Budgets are tiny (hundreds of steps): these tests check the machinery, not learning.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from gymnasium import spaces

from robocell.errors import RobocellError
from robocell.normalizer import NormalizerStats
from robocell.train.rundir import latest_checkpoint, load_run, read_metrics

WELD_TINY: dict[str, Any] = {
    "env_id": "robocell/WeldSeam-v1",
    "algo": "ppo",
    "total_timesteps": 1000,
    "n_envs": 2,
    "hyperparams": {"n_steps": 250, "batch_size": 100, "n_epochs": 2},
    "policy_kwargs": {"net_arch": [32, 32]},
    "eval_freq": 500,
    "eval_episodes": 1,
    "eval_video": True,
    "checkpoint_freq": 500,
    "pretrain": {"episodes": 1, "epochs": 2, "dagger_rounds": 1, "dagger_episodes": 1},
}
PENDULUM_PPO: dict[str, Any] = {
    "env_id": "Pendulum-v1",
    "algo": "ppo",
    "total_timesteps": 3072,
    "hyperparams": {"n_steps": 128, "batch_size": 64, "n_epochs": 1},
    "policy_kwargs": {"net_arch": [16]},
    "eval_freq": 0,
    "checkpoint_freq": 256,
}


def robocell(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "robocell", *args], capture_output=True, text=True, timeout=timeout
    )


def spawn(*args: str) -> subprocess.Popen[str]:
    """Start ``robocell ARGS`` in its own process group (as a terminal would)."""
    return subprocess.Popen(
        [sys.executable, "-m", "robocell", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def latest_steps(run_dir: Path) -> int:
    latest = run_dir / "checkpoints" / "latest.json"
    return json.loads(latest.read_text())["timesteps"] if latest.exists() else 0


def wait_for_checkpoint(run_dir: Path, proc: subprocess.Popen[str], at_least: int) -> int:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        steps = latest_steps(run_dir)
        if steps >= at_least:
            return steps
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.2)
    raise AssertionError("no checkpoint appeared")


def scalars(tb_dir: Path) -> dict[str, list[int]]:
    """Tag -> logged steps, over all event files of a TensorBoard run."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps: dict[str, list[int]] = {}
    for event_file in sorted(tb_dir.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(event_file), size_guidance={"scalars": 0, "images": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            steps.setdefault(tag, []).extend(e.step for e in acc.Scalars(tag))
        for tag in acc.Tags()["images"]:
            steps.setdefault(tag, []).extend(e.step for e in acc.Images(tag))
    return steps


# ---------------------------------------------------------------------- normaliser
def _vecnormalize(env_id: str, **kwargs: Any) -> Any:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    vec = VecNormalize(make_vec_env(env_id, n_envs=2, seed=0), **kwargs)
    vec.reset()
    for _ in range(30):
        vec.step(np.stack([vec.action_space.sample() for _ in range(2)]))
    return vec


def test_normalizer_json_reproduces_vecnormalize(tmp_path: Path) -> None:
    vec = _vecnormalize("Pendulum-v1", clip_obs=0.5)
    NormalizerStats.from_vecnormalize(vec).to_json(tmp_path / "n.json")
    stats = NormalizerStats.from_json(tmp_path / "n.json")
    raw = vec.get_original_obs()
    assert np.array_equal(stats.normalize(raw), vec.normalize_obs(raw))
    assert stats.normalize(raw[0]).dtype == np.float32
    document = json.loads((tmp_path / "n.json").read_text())
    assert document["format"] == "robocell-normalizer/1" and document["clip_obs"] == 0.5


def test_normalizer_dict_observations_normalise_only_listed_keys() -> None:
    from robocell.normalizer import RunningStats

    stats = NormalizerStats(
        clip_obs=5.0, epsilon=1e-8, obs={"state": RunningStats(np.ones(2), 4 * np.ones(2), 3.0)}
    )
    image = np.full((4, 4, 3), 200, dtype=np.uint8)
    out = stats.normalize({"state": np.array([3.0, 100.0]), "image": image})
    assert np.allclose(out["state"], [1.0, 5.0]) and out["image"] is image
    again = NormalizerStats.from_dict(stats.to_dict())
    assert np.array_equal(again.normalize({"state": np.zeros(2)})["state"], [-0.5, -0.5])


@pytest.mark.parametrize(
    "document",
    [
        {"format": "other", "clip_obs": 10.0, "epsilon": 1e-8, "obs": None},
        {"format": "robocell-normalizer/1", "clip_obs": -1, "epsilon": 1e-8, "obs": None},
        {"format": "robocell-normalizer/1", "clip_obs": 10, "epsilon": 1e-8, "obs": {"mean": [1]}},
        {"format": "robocell-normalizer/1", "clip_obs": 10, "epsilon": 1e-8,
         "obs": {"mean": [1.0, 2.0], "var": [1.0], "count": 1}},
        {"format": "robocell-normalizer/1", "clip_obs": 10, "epsilon": 1e-8,
         "obs": {"mean": [1.0], "var": [-1.0], "count": 1}},
        {"format": "robocell-normalizer/1", "clip_obs": 10, "epsilon": 1e-8, "obs": None, "x": 1},
    ],
)  # fmt: skip
def test_normalizer_rejects_malformed_json(tmp_path: Path, document: dict[str, Any]) -> None:
    path = tmp_path / "n.json"
    path.write_text(json.dumps(document))
    with pytest.raises(RobocellError, match=str(path)):
        NormalizerStats.from_json(path)


def test_dict_spaces_normalise_every_non_image_key() -> None:
    from robocell.train.config import config_from_dict
    from robocell.train.vec_env import normalized_keys

    space = spaces.Dict(
        {
            "image": spaces.Box(0, 255, (84, 84, 3), dtype=np.uint8),
            "state": spaces.Box(-1, 1, (5,)),
        }
    )
    config = config_from_dict({"env_id": "Pendulum-v1", "algo": "ppo", "total_timesteps": 1})
    assert normalized_keys(config, space) == ["state"]


# ---------------------------------------------------------------------- a tiny weld run
@pytest.fixture(scope="module")
def weld_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("weld")
    config = write_config(root / "weld.yaml", WELD_TINY)
    run_dir = root / "run"
    result = robocell("train", str(config), "--run-dir", str(run_dir), "--set", "seed=5")
    assert result.returncode == 0, result.stderr
    assert str(run_dir / "tb") in result.stdout
    return run_dir


def test_run_directory_layout(weld_run: Path) -> None:
    for name in (
        "config.yaml",
        "command.txt",
        "normalizer.json",
        "metrics.jsonl",
        "best/model.zip",
        "best/normalizer.json",
        "checkpoints/latest.json",
    ):
        assert (weld_run / name).is_file(), name  # fmt: skip
    config = yaml.safe_load((weld_run / "config.yaml").read_text())
    assert config["seed"] == 5 and config["env_id"] == "robocell/WeldSeam-v1"
    for key in (
        "env_kwargs",
        "algo",
        "policy",
        "hyperparams",
        "policy_kwargs",
        "n_envs",
        "vec_env",
        "normalize",
        "total_timesteps",
    ):
        assert key in config  # fmt: skip
    assert "--set seed=5" in (weld_run / "command.txt").read_text()
    assert list((weld_run / "tb").glob("events.out.tfevents.*"))
    assert list((weld_run / "videos").glob("eval_*.gif"))
    rows = read_metrics(weld_run)
    assert [row["timesteps"] for row in rows] == [0, 500, 1000]  # 0: after cloning, before RL
    assert all(0.0 <= row["success_rate"] <= 1.0 and "mean/energy_j" in row for row in rows)


def test_tensorboard_has_the_cell_energy_and_eval_tags(weld_run: Path) -> None:
    tags = scalars(weld_run / "tb")
    for tag in (
        "cell/return",
        "cell/return/weld_good",
        "cell/return/energy",
        "cell/success_rate",
        "cell/cycle_time_s",
        "cell/seam_coverage",
        "cell/defect_length_mm",
        "energy/episode_j",
        "energy/mean_power_w",
        "eval/success_rate",
        "eval/return",
        "eval/energy_j",
        "eval/seam_coverage",
        "eval/frames",
        "rollout/ep_rew_mean",
        "train/value_loss",
    ):
        assert tag in tags, f"{tag} missing; have {sorted(tags)}"  # fmt: skip


def test_load_run_gives_the_model_and_its_statistics(weld_run: Path) -> None:
    best = load_run(weld_run)
    assert best.checkpoint_path == weld_run / "best" / "model.zip"
    assert best.run_id == "run" and len(best.config_digest) == 64
    assert best.normalizer is not None
    on_disk = NormalizerStats.from_json(weld_run / "best" / "normalizer.json")
    obs = np.zeros(best.model.observation_space.shape, dtype=np.float32)
    assert np.array_equal(best.normalizer.normalize(obs), on_disk.normalize(obs))
    action, _ = best.model.predict(best.normalizer.normalize(obs), deterministic=True)
    assert action.shape == (4,)
    last = load_run(weld_run, "last")
    assert last.checkpoint_path == latest_checkpoint(weld_run)
    assert last.model.num_timesteps == 1000


def test_load_run_refuses_missing_runs_and_outside_files(tmp_path: Path, weld_run: Path) -> None:
    with pytest.raises(RobocellError, match="no such run directory"):
        load_run(tmp_path / "nothing")
    outside = tmp_path / "model.zip"
    outside.write_bytes((weld_run / "best" / "model.zip").read_bytes())
    with pytest.raises(RobocellError, match="only a run's own files"):
        load_run(weld_run, outside)


def test_eval_command_prints_means_and_intervals(weld_run: Path) -> None:
    result = robocell("eval", str(weld_run), "--episodes", "2", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)["figures"]
    for key in ("success", "energy_j", "cycle_time_s", "seam_coverage", "return"):
        row = figures[key]
        assert row["n"] == 2 and row["ci_low"] <= row["mean"] <= row["ci_high"]


def test_tb_command_points_at_the_run(weld_run: Path) -> None:
    result = robocell("tb", str(weld_run), "--print-command")
    assert result.returncode == 0
    assert f"run:{weld_run / 'tb'}" in result.stdout


def test_tb_shows_runs_whose_names_hold_a_comma_or_a_colon(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.data_ingester import _parse_event_files_spec

    from robocell.train.cli import _logdir_spec

    runs = [tmp_path / "lr=3e-4,seed=0", tmp_path / "weld:seed1", tmp_path / "plain"]
    for run in runs:
        (run / "tb").mkdir(parents=True)
    spec, links = _logdir_spec([str(run) for run in runs])
    try:
        # What TensorBoard itself makes of the spec: every run, under a readable name.
        assert _parse_event_files_spec(spec) == {
            str((runs[0] / "tb").resolve()): "lr=3e-4_seed=0",
            str((runs[1] / "tb").resolve()): "weld_seed1",
            str((runs[2] / "tb").resolve()): "plain",
        }
    finally:
        assert links is not None
        shutil.rmtree(links)


# ---------------------------------------------------------------------- cloning
@pytest.mark.parametrize(
    ("env_id", "algo", "episodes"),
    [("robocell/WeldSeam-v1", "ppo", 1), ("robocell/WeldSeam-v1", "sac", 1),
     ("robocell/VisionSort-v1", "ppo", 3)],
    ids=["weld-ppo", "weld-sac", "vision-ppo"],
)  # fmt: skip
def test_cloning_fits_the_scripted_controller(env_id: str, algo: str, episodes: int) -> None:
    import torch

    from robocell.agents.algos import build_model
    from robocell.train.config import config_from_dict
    from robocell.train.pretrain import collect_demonstrations, warm_start
    from robocell.train.vec_env import make_vec_env

    pretrain = {"episodes": episodes, "epochs": 40, "log_std": -2.0, "dagger_rounds": 0}
    hyperparams = {"buffer_size": 5000} if algo == "sac" else {"n_steps": 64, "batch_size": 32}
    env_kwargs = {"action_mode": "continuous"} if "Vision" in env_id else {}
    config = config_from_dict({
        "env_id": env_id, "env_kwargs": env_kwargs, "algo": algo, "total_timesteps": 1,
        "hyperparams": hyperparams, "policy_kwargs": {"net_arch": [64, 64]}, "pretrain": pretrain,
    })  # fmt: skip
    demos = collect_demonstrations(config)
    venv = make_vec_env(config)
    try:
        model = build_model(config, venv)

        def action_error() -> float:
            predicted, _ = model.predict(venv.normalize_obs(demos.obs), deterministic=True)
            return float(np.mean((predicted - demos.actions) ** 2))

        before = action_error()
        warm_start(config, model, venv)
        assert action_error() < 0.25 * before
        if algo == "ppo":
            dims = model.action_space.shape[0]
            assert torch.allclose(model.policy.log_std, torch.full((dims,), -2.0))
        else:
            assert model.replay_buffer.size() == len(demos.rewards)
    finally:
        venv.close()


def test_target_set_cross_entropy() -> None:
    import torch
    import torch.nn.functional as F

    from robocell.train.pretrain import target_set_cross_entropy

    log_probs = torch.log_softmax(torch.randn(4, 10, generator=torch.Generator().manual_seed(0)), 1)
    single = torch.tensor([[[3.0, -1.0], [1.0, 0.0]]] * 4)  # one target: plain cross-entropy
    single[:, 0, 0] = torch.tensor([3.0, 0.0, 9.0, 5.0])
    expected = F.nll_loss(log_probs, torch.tensor([3, 0, 9, 5]))
    torch.testing.assert_close(target_set_cross_entropy(log_probs, single), expected)
    weighted = torch.tensor([[[2.0, 7.0, -1.0], [1.0, 3.0, 0.0]]])  # (1·lp[2] + 3·lp[7]) / 4
    expected = -(log_probs[0, 2] + 3 * log_probs[0, 7]) / 4
    torch.testing.assert_close(target_set_cross_entropy(log_probs[:1], weighted), expected)


def test_cloning_fits_the_sorters_picks_over_the_image() -> None:
    from robocell.agents.algos import build_model
    from robocell.train.config import config_from_dict
    from robocell.train.pretrain import collect_demonstrations, warm_start
    from robocell.train.vec_env import make_vec_env

    config = config_from_dict({
        "env_id": "robocell/VisionSort-v1", "algo": "ppo", "total_timesteps": 1,
        "policy": "PickMapPolicy", "hyperparams": {"n_steps": 64, "batch_size": 32},
        "pretrain": {"episodes": 3, "epochs": 40, "batch_size": 16, "learning_rate": 3e-3,
                     "dagger_rounds": 0, "targets": "candidates", "log_std": None},
    })  # fmt: skip
    demos = collect_demonstrations(config)
    venv = make_vec_env(config)
    try:
        model = build_model(config, venv)
        grid = venv.get_attr("task")[0].grid

        def hits() -> float:
            """Share of demonstration frames whose pick is a part the sorter saw, right bin."""
            predicted, _ = model.predict(venv.normalize_obs(demos.obs), deterministic=True)
            pairs = zip(predicted, demos.targets, strict=True)
            return float(np.mean([_near_a_target(grid, a, t) for a, t in pairs]))

        before = hits()
        warm_start(config, model, venv)
        assert before <= 0.2 and hits() >= 0.8
    finally:
        venv.close()


def test_hindsight_targets_need_a_controller_that_reports_them() -> None:
    from robocell.schema import SchemaError
    from robocell.train.config import config_from_dict
    from robocell.train.pretrain import collect_demonstrations

    config = config_from_dict({
        "env_id": "robocell/PegInsert-v0", "algo": "ppo", "total_timesteps": 1,
        "pretrain": {"episodes": 1, "targets": "outcomes"},
    })  # fmt: skip
    with pytest.raises(SchemaError, match=r"pretrain\.targets: 'outcomes' needs a controller"):
        collect_demonstrations(config)


def _near_a_target(grid: Any, action: int, targets: np.ndarray) -> bool:
    """Whether ``action`` picks within 5 mm of one of ``targets`` (−1: none) with its bin."""
    xy, bin_name = grid.decode(action)
    for target in targets[targets >= 0]:
        target_xy, target_bin = grid.decode(target)
        if bin_name == target_bin and np.linalg.norm(xy - target_xy) <= 0.005:
            return True
    return False


def test_vision_config_trains_and_evaluates_with_a_tiny_budget(tmp_path: Path) -> None:
    config = Path(__file__).resolve().parents[1] / "configs" / "vision_ppo.yaml"
    run_dir = tmp_path / "run"
    tiny = [
        *("total_timesteps=16", "n_envs=1", "vec_env=dummy", "eval_freq=16", "eval_episodes=2"),
        *("hyperparams.n_steps=8", "hyperparams.batch_size=8", "hyperparams.n_epochs=1"),
        *("pretrain.episodes=2", "pretrain.epochs=2", "checkpoint_freq=16"),
    ]
    sets = [arg for item in tiny for arg in ("--set", item)]
    result = robocell("train", str(config), "--run-dir", str(run_dir), "--quiet", *sets)
    assert result.returncode == 0, result.stderr
    assert [row["timesteps"] for row in read_metrics(run_dir)] == [
        0,
        16,
    ]  # after imitation, at the end
    run = load_run(run_dir)
    assert type(run.model.policy).__name__ == "PickMapPolicy"
    assert run.model.action_space.n == 2 * 168 * 168
    result = robocell("eval", str(run_dir), "--episodes", "1", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)["figures"]
    assert {"sort_accuracy", "escape_rate", "picks_per_part", "energy_per_part_j"} <= set(figures)


# ---------------------------------------------------------------------- kill -9, resume
def _kill_and_resume(tmp_path: Path, data: dict[str, Any]) -> tuple[Path, int]:
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", data)
    proc = spawn("train", str(config), "--run-dir", str(run_dir), "--quiet")
    killed_at = wait_for_checkpoint(run_dir, proc, at_least=2 * data["checkpoint_freq"])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    resumed = robocell("train", "--resume", str(run_dir), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    return run_dir, killed_at


def test_kill_9_then_resume_continues_the_step_counter_and_tb_run(tmp_path: Path) -> None:
    run_dir, killed_at = _kill_and_resume(tmp_path, PENDULUM_PPO)
    assert latest_steps(run_dir) >= PENDULUM_PPO["total_timesteps"]
    events = sorted((run_dir / "tb").glob("events.out.tfevents.*"))
    assert len(events) == 2  # same TensorBoard run: one file per process, one directory
    steps_after = scalars_in(events[1])
    assert min(steps_after) > killed_at  # continues from the checkpoint, not from 0
    assert max(steps_after) >= PENDULUM_PPO["total_timesteps"]
    assert len((run_dir / "command.txt").read_text().splitlines()) == 2
    assert len(list((run_dir / "checkpoints").glob("step_*.zip"))) <= 2  # checkpoints_kept


def scalars_in(event_file: Path) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(event_file))
    acc.Reload()
    return [e.step for tag in acc.Tags()["scalars"] for e in acc.Scalars(tag)]


def test_off_policy_resume_restores_the_replay_buffer(tmp_path: Path) -> None:
    sac = {
        "env_id": "Pendulum-v1",
        "algo": "sac",
        "total_timesteps": 1600,
        "hyperparams": {"learning_starts": 100, "batch_size": 32, "buffer_size": 5000},
        "policy_kwargs": {"net_arch": [16]},
        "eval_freq": 0,
        "checkpoint_freq": 400,
    }
    run_dir, _ = _kill_and_resume(tmp_path, sac)
    final = latest_checkpoint(run_dir)
    assert final is not None
    buffer = final.with_name(final.stem + ".replay_buffer.pkl")
    loaded = load_run(run_dir, "last").model
    loaded.load_replay_buffer(str(buffer))
    # Every transition since step 0 is there: the buffer survived the kill.
    assert loaded.replay_buffer.size() == sac["total_timesteps"]


def test_resume_refuses_a_config_and_a_non_run(tmp_path: Path) -> None:
    result = robocell("train", "--resume", str(tmp_path))
    assert result.returncode == 2 and "not a run directory" in result.stderr
    result = robocell("train", "x.yaml", "--resume", str(tmp_path))
    assert result.returncode == 2 and "--resume continues a run" in result.stderr


def test_resume_falls_back_past_a_truncated_checkpoint(tmp_path: Path) -> None:
    data = {**PENDULUM_PPO, "total_timesteps": 512, "checkpoint_freq": 256}
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", data)
    assert robocell("train", str(config), "--run-dir", str(run_dir), "--quiet").returncode == 0
    newest = latest_checkpoint(run_dir)
    assert newest is not None and newest.name == "step_0000000512.zip"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a full disk
    resumed = robocell("train", "--resume", str(run_dir), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert "checkpoint step_0000000512.zip is damaged" in resumed.stderr
    assert "Traceback" not in resumed.stderr
    assert latest_steps(run_dir) == 512  # trained again from step 256
    assert load_run(run_dir, "last").model.num_timesteps == 512


def _commands(run_dir: Path) -> int:
    return len((run_dir / "command.txt").read_text().splitlines())


def _wait_for_commands(run_dir: Path, proc: subprocess.Popen[str], count: int) -> None:
    deadline = time.monotonic() + 300
    while _commands(run_dir) < count:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.2)


def test_a_run_is_trained_by_one_process_at_a_time(tmp_path: Path) -> None:
    data = {**PENDULUM_PPO, "total_timesteps": 200_000, "checkpoint_freq": 256}
    run_dir = tmp_path / "run"
    holder = spawn("train", str(write_config(tmp_path / "c.yaml", data)), "--run-dir", str(run_dir))
    try:
        wait_for_checkpoint(run_dir, holder, at_least=256)
        for round_ in range(2):
            if round_:  # after kill -9 of the first, a resume gets the lock ...
                holder = spawn("train", "--resume", str(run_dir), "--quiet")
                _wait_for_commands(run_dir, holder, 2)  # it holds the lock once it has logged
            # ... and a second one is refused at once (unrefused, it would train 200k steps)
            refused = robocell("train", "--resume", str(run_dir), "--quiet", timeout=180)
            assert refused.returncode == 2, refused.stderr
            assert f"being trained by process {holder.pid}" in refused.stderr
            os.kill(holder.pid, signal.SIGKILL)  # the lock dies with its holder
            holder.wait(timeout=60)
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
            holder.wait(timeout=60)
    assert _commands(run_dir) == 2  # the refused resumes recorded nothing


# ---------------------------------------------------------------------- SIGINT
def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path: Path) -> None:
    data = {**PENDULUM_PPO, "total_timesteps": 200_000, "n_envs": 2, "vec_env": "subproc",
            "checkpoint_freq": 512}  # fmt: skip
    run_dir = tmp_path / "run"
    proc = spawn("train", str(write_config(tmp_path / "c.yaml", data)), "--run-dir", str(run_dir))
    first = wait_for_checkpoint(run_dir, proc, at_least=512)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "checkpoint saved" in stderr and "Traceback" not in stderr
    saved = latest_steps(run_dir)
    assert first < saved < data["total_timesteps"]
    assert load_run(run_dir, "last").model.num_timesteps == saved


def test_tensorboard_has_the_final_evaluation_between_periodic_ones(tmp_path: Path) -> None:
    # eval_freq far beyond total_timesteps: the only evaluation is the final one.
    data = {**PENDULUM_PPO, "total_timesteps": 256, "eval_freq": 4096, "eval_episodes": 1}
    config = write_config(tmp_path / "c.yaml", data)
    done = robocell("train", str(config), "--run-dir", str(tmp_path / "run"), "--quiet")
    assert done.returncode == 0, done.stderr
    final = read_metrics(tmp_path / "run")[-1]["timesteps"]
    assert final >= 256
    assert final in scalars(tmp_path / "run" / "tb")["eval/success_rate"]
