"""Training-config schema: shipped configs, overrides, and many bad configs rejected by field."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from gymnasium import spaces

from robocell.agents.algos import HYPERPARAMS, algo_class, choose_policy, resolve_schedule
from robocell.errors import RobocellError
from robocell.eval.release.contract import load_contract
from robocell.eval.spec import load_spec
from robocell.schema import SchemaError, to_dict
from robocell.train.config import config_digest, config_from_dict, load_config
from robocell.util import MAX_YAML_BYTES

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TRAINING_CONFIGS = sorted(p for p in CONFIGS.glob("*.yaml"))
MINIMAL: dict[str, Any] = {"env_id": "robocell/WeldSeam-v0", "algo": "ppo", "total_timesteps": 100}


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("path", TRAINING_CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_parse_and_round_trip(path: Path) -> None:
    config = load_config(path)
    again = config_from_dict(to_dict(config))
    assert again == config
    assert config_digest(again) == config_digest(config)


def test_weld_configs_exist() -> None:
    names = {p.name for p in TRAINING_CONFIGS}
    assert {"weld_ppo.yaml", "weld_sac.yaml"} <= names


def test_defaults_fill_in(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.n_envs == 1 and config.vec_env == "dummy" and config.policy == "auto"
    assert config.normalize.obs and config.normalize.reward and config.normalize.clip_obs == 10.0
    assert config.gamma == 0.99


def test_overrides_and_seed_are_applied_last(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, {**MINIMAL, "seed": 3}),
        ["hyperparams.learning_rate=lin_1e-3", "normalize.reward=false", "n_envs=4",
         "hyperparams.gamma=1e-0"],
        seed=7,
    )  # fmt: skip
    assert config.hyperparams == {"learning_rate": "lin_1e-3", "gamma": 1.0}
    assert not config.normalize.reward
    assert config.n_envs == 4 and config.seed == 7


def test_exponent_without_a_dot_is_a_number(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        "env_id: robocell/WeldSeam-v0\nalgo: sac\ntotal_timesteps: 10\n"
        "hyperparams: {learning_rate: 3e-4}\n"
    )
    assert load_config(path).hyperparams["learning_rate"] == pytest.approx(3e-4)


BAD: list[tuple[dict[str, Any], str]] = [
    ({"env_id": "robocell/WeldSeam-v0", "algo": "ppo"}, "total_timesteps: required"),
    ({**MINIMAL, "learning_rate": 1e-3}, "learning_rate: unknown key"),
    ({**MINIMAL, "algo": "dqn"}, "algo: must be one of"),
    ({**MINIMAL, "env_id": "robocell/Nope-v0"}, "env_id: unknown environment"),
    ({**MINIMAL, "total_timesteps": 0}, "total_timesteps: must be >= 1"),
    ({**MINIMAL, "total_timesteps": "many"}, "total_timesteps: expected an integer"),
    ({**MINIMAL, "n_envs": 0}, "n_envs: must be >= 1"),
    ({**MINIMAL, "vec_env": "ray"}, "vec_env: must be one of"),
    ({**MINIMAL, "policy": "LstmPolicy"}, "policy: must be one of"),
    ({**MINIMAL, "seed": -1}, "seed: must be >= 0"),
    ({**MINIMAL, "eval_episodes": 0}, "eval_episodes: must be >= 1"),
    ({**MINIMAL, "checkpoints_kept": 0}, "checkpoints_kept: must be >= 1"),
    ({**MINIMAL, "run_name": "../escape"}, "run_name: use letters"),
    ({**MINIMAL, "eval_video": "yes"}, "eval_video: expected true or false"),
    ({**MINIMAL, "hyperparams": {"gamma": 1.5}}, "hyperparams.gamma: must be in (0, 1]"),
    ({**MINIMAL, "hyperparams": {"n_step": 64}}, "hyperparams.n_step: unknown hyperparameter"),
    ({**MINIMAL, "hyperparams": {"buffer_size": 10}}, "hyperparams.buffer_size: unknown"),
    ({**MINIMAL, "hyperparams": {"seed": 1}}, "hyperparams.seed: unknown hyperparameter"),
    ({**MINIMAL, "hyperparams": {"learning_rate": "lin_x"}}, "hyperparams.learning_rate"),
    ({**MINIMAL, "hyperparams": {"learning_rate": -1.0}}, "hyperparams.learning_rate"),
    ({**MINIMAL, "hyperparams": {"n_steps": 1.5}}, "hyperparams.n_steps: expected an integer"),
    ({**MINIMAL, "hyperparams": {"n_steps": 1}}, "n_steps * n_envs must be > 1"),
    ({**MINIMAL, "hyperparams": {"ent_coef": "auto"}}, "hyperparams.ent_coef"),
    ({**MINIMAL, "hyperparams": {"target_kl": 0}}, "hyperparams.target_kl"),
    ({**MINIMAL, "algo": "sac", "hyperparams": {"train_freq": [1, "hour"]}}, "train_freq"),
    ({**MINIMAL, "algo": "sac", "hyperparams": {"ent_coef": "auto_-1"}}, "ent_coef"),
    ({**MINIMAL, "algo": "td3", "hyperparams": {"noise_type": "pink"}}, "noise_type"),
    ({**MINIMAL, "hyperparams": [1, 2]}, "hyperparams: expected a mapping"),
    ({**MINIMAL, "policy_kwargs": {"net_arch": [64, -1]}}, "policy_kwargs.net_arch"),
    ({**MINIMAL, "policy_kwargs": {"net_arch": {"actor": [64]}}}, "policy_kwargs.net_arch"),
    ({**MINIMAL, "policy_kwargs": {"activation_fn": "swish"}}, "policy_kwargs.activation_fn"),
    ({**MINIMAL, "normalize": {"clip_obs": 0}}, "normalize.clip_obs: must be > 0"),
    ({**MINIMAL, "normalize": {"obs": True, "scale": 2}}, "normalize.scale: unknown key"),
    ({**MINIMAL, "normalize": {"obs_keys": "state"}}, "normalize.obs_keys: expected a list"),
]


@pytest.mark.parametrize(("data", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_config_is_rejected_naming_the_field(
    tmp_path: Path, data: dict[str, Any], message: str
) -> None:
    with pytest.raises(SchemaError) as caught:
        load_config(write(tmp_path, data))
    assert message in str(caught.value)
    assert str(tmp_path / "run.yaml") in str(caught.value)


@pytest.mark.parametrize(
    "override", ["no_equals_sign", "=3", "hyperparams.gamma=[unclosed", "n_envs.x=3"]
)
def test_bad_override_is_a_robocell_error(tmp_path: Path, override: str) -> None:
    with pytest.raises(RobocellError):
        load_config(write(tmp_path, MINIMAL), [override])


def test_missing_and_broken_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(RobocellError, match="no such file"):
        load_config(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("env_id: [unclosed\n")
    with pytest.raises(RobocellError, match="not valid YAML"):
        load_config(broken)


def _alias_bomb() -> str:
    """Six levels of ten aliases: 300 bytes that expand to over a million nodes."""
    lines = ['l0: &l0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, 6):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


HOSTILE_YAML: dict[str, tuple[bytes, str]] = {
    "alias-bomb": (_alias_bomb().encode(), "more than 100000 YAML nodes"),
    "recursive-alias": (b"a: &a [1, *a]\n", "refers to the node that holds it"),
    "binary": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "not UTF-8 text"),
    "oversized": (b"name: '" + b"x" * MAX_YAML_BYTES + b"'\n", "too large for a YAML file"),
}
LOADERS = {"config": load_config, "spec": load_spec, "contract": load_contract}


@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.parametrize("kind", sorted(HOSTILE_YAML))
def test_hostile_yaml_is_refused_by_every_loader(tmp_path: Path, loader: str, kind: str) -> None:
    content, message = HOSTILE_YAML[kind]
    path = tmp_path / "hostile.yaml"
    path.write_bytes(content)
    with pytest.raises(RobocellError, match=message) as error:
        LOADERS[loader](path)
    assert str(path) in str(error.value)


def test_alias_bomb_in_a_set_override_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RobocellError, match="alias bomb"):
        bomb = "{" + _alias_bomb().strip().replace("\n", ", ") + "}"
        load_config(write(tmp_path, MINIMAL), ["env_kwargs.x=" + bomb])


def test_cli_rejects_a_binary_config_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_bytes(HOSTILE_YAML["binary"][0])
    result = subprocess.run(
        [sys.executable, "-m", "robocell", "train", str(path), "--run-dir", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2 and "not UTF-8 text" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_rejects_a_bad_config_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, {**MINIMAL, "hyperparams": {"gamma": 2}})
    result = subprocess.run(
        [sys.executable, "-m", "robocell", "train", str(path), "--run-dir", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2
    assert "robocell train: error:" in result.stderr
    assert "hyperparams.gamma" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()


def test_cli_rejects_bad_set_with_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    result = subprocess.run(
        [sys.executable, "-m", "robocell", "train", str(path), "--set", "n_envs=-2"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2 and "n_envs: must be >= 1" in result.stderr


@pytest.mark.parametrize("algo", sorted(HYPERPARAMS))
def test_hyperparameter_table_matches_the_algorithm(algo: str) -> None:
    accepted = set(inspect.signature(algo_class(algo).__init__).parameters)
    accepted |= {"noise_type", "noise_std"}  # rl-zoo3 names, turned into action_noise
    assert set(HYPERPARAMS[algo]) <= accepted


def test_linear_schedule_decays_to_zero() -> None:
    schedule = resolve_schedule("lin_3e-4")
    assert schedule(1.0) == pytest.approx(3e-4)
    assert schedule(0.5) == pytest.approx(1.5e-4)
    assert schedule(0.0) == 0.0
    assert resolve_schedule(0.1) == 0.1


def test_policy_choice_follows_the_observation_space() -> None:
    vector = spaces.Box(-1, 1, (17,))
    image = spaces.Box(0, 255, (84, 84, 3), dtype="uint8")
    assert choose_policy(vector) == "MlpPolicy"
    assert choose_policy(image) == "CnnPolicy"
    assert choose_policy(spaces.Dict({"image": image, "state": vector})) == "MultiInputPolicy"
