"""Fine-tuning a deployed policy: a run that starts from a bundle's ONNX weights.

The shipped peg bundle is the parent. Before any update, the new model (with the statistics
read from the graph) must act as the bundle does; a short fine-tune trains and exports; a
bundle that does not fit the config is refused with its reason.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robocell.agents.bundle import load_bundle
from robocell.agents.bundle.intake import check_bundle
from robocell.errors import RobocellError
from robocell.train.config import load_config
from robocell.train.improve.warm_start import BundleWarmStartTrainer, start_run_from_bundle
from robocell.train.rundir import create_run_dir, latest_steps
from robocell.train.trainer import Trainer
from robocell.train.vec_env import make_vec_env

ROOT = Path(__file__).resolve().parents[1]
PEG = ROOT / "models" / "peg"
TINY = ["total_timesteps=256", "hyperparams.n_steps=128", "hyperparams.batch_size=64",
        "n_envs=2", "vec_env=dummy", "eval_freq=0", "checkpoint_freq=0"]  # fmt: skip


def _config(*overrides: str):
    return load_config(ROOT / "configs" / "peg_ppo.yaml", [*TINY, *overrides])


def test_the_warm_started_model_acts_as_the_bundle(tmp_path: Path) -> None:
    config = _config()
    bundle = load_bundle(PEG)
    checked = check_bundle(PEG)
    trainer = BundleWarmStartTrainer(config, create_run_dir(tmp_path / "run", config, "test"),
                                     False, PEG, checked.onnx_bytes, checked.manifest)  # fmt: skip
    trainer.venv = make_vec_env(config)
    try:
        trainer._setup_model()
        env = bundle.make_env()
        observations = []
        obs, _ = env.reset(seed=11)
        for _ in range(40):
            observations.append(obs)
            obs, _, done, truncated, _ = env.step(bundle.act(obs))
            if done or truncated:
                obs, _ = env.reset()
        env.close()
        raw = np.stack(observations).astype(np.float32)
        normalized = trainer.venv.normalize_obs(raw)
        torch_actions = trainer.model.predict(normalized, deterministic=True)[0]
        onnx_actions = bundle.act_batch(raw)
        np.testing.assert_allclose(torch_actions, onnx_actions, atol=1e-5)
        # A fresh model (no warm start) acts otherwise: the comparison can fail.
        fresh = Trainer(config, create_run_dir(tmp_path / "f", config, "t"), False, False)
        fresh.venv = trainer.venv
        fresh._setup_model()
        fresh_actions = fresh.model.predict(normalized, deterministic=True)[0]
        assert np.max(np.abs(fresh_actions - onnx_actions)) > 1e-2
    finally:
        trainer.venv.close()


def test_a_short_fine_tune_trains_from_the_bundle(tmp_path: Path) -> None:
    result = start_run_from_bundle(_config(), tmp_path / "run", "test", PEG, progress=False)
    assert result.timesteps >= 256 and not result.interrupted
    assert latest_steps(tmp_path / "run") == result.timesteps


def test_a_bundle_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RobocellError, match="does not fit"):
        start_run_from_bundle(_config("policy_kwargs.net_arch.pi=[32,32]"), tmp_path / "a",
                              "test", PEG, progress=False)  # fmt: skip
    with pytest.raises(RobocellError, match="for robocell/PegInsert-v0"):
        start_run_from_bundle(
            load_config(ROOT / "configs" / "weld_ppo.yaml", TINY), tmp_path / "b", "test", PEG
        )


def test_the_cli_refuses_from_bundle_with_resume_or_seeds(tmp_path: Path) -> None:
    for extra in (["--resume", str(tmp_path)], ["--seeds", "0-1"]):
        config = [] if extra[0] == "--resume" else [str(ROOT / "configs" / "peg_ppo.yaml")]
        done = subprocess.run([sys.executable, "-m", "robocell", "train", *config,
                               "--from-bundle", str(PEG), *extra],
                              capture_output=True, text=True, cwd=ROOT)  # fmt: skip
        assert done.returncode != 0 and "--from-bundle" in done.stderr
        assert "Traceback" not in done.stderr
