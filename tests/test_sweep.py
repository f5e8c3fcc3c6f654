"""Sweep spaces and scores without Ray: schema, checks against the config, the trial metrics.

Sweeps on Ray (Tune, restore after kill -9) are in tests/test_ray.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from test_executor import PENDULUM_TINY

from robocell.cli import main
from robocell.schema import SchemaError
from robocell.train.config import load_config
from robocell.train.sweep.space import ScoreSpec, check_space, load_space, trial_score
from robocell.train.sweep.tuner import TrialProgress

GOOD = {
    "params": {
        "hyperparams.learning_rate": {"distribution": "loguniform", "low": 1e-4, "high": 1e-2}
    }
}


@pytest.mark.parametrize(("config", "space"), [("weld_ppo", "weld"), ("peg_ppo", "peg")])
def test_packaged_spaces_fit_their_configs(config: str, space: str) -> None:
    run_config = load_config(f"configs/{config}.yaml")
    path, parsed = load_space(space)
    assert path.name == f"{space}.yaml" and "hyperparams.learning_rate" in parsed.params
    check_space(parsed, run_config)


def _lr(**spec: Any) -> dict[str, Any]:
    return {"params": {"hyperparams.learning_rate": spec}}


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({**GOOD, "budget": 3}, "budget: unknown key"),
        (_lr(distribution="loguniform", low=1e-4, hihg=1e-2), "hihg: unknown key"),
        (_lr(distribution="gauss", low=0, high=1), "distribution: must be one of"),
        (_lr(distribution="uniform", low=1.0, high=0.5), "learning_rate.high: must be > low"),
        (_lr(distribution="loguniform", low=0.0, high=1.0), "learning_rate.low: loguniform"),
        (_lr(distribution="choice", values=[[64], [32]]), "numbers, strings or booleans"),
        ({"params": {}}, "params: name at least one"),
        ({**GOOD, "score": {"energy_scale_j": 0}}, "score.energy_scale_j: must be > 0"),
        ({**GOOD, "asha": {"reduction_factor": 1}}, "asha.reduction_factor: must be > 1"),
    ],
)
def test_bad_spaces_are_refused_naming_the_field(
    tmp_path: Path, space: dict[str, Any], message: str
) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    with pytest.raises(SchemaError, match=message):
        load_space(path)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"hyperparam.lr": {"distribution": "uniform", "low": 0, "high": 1}},
            "params.hyperparam.lr: 0.0 gives a bad config: hyperparam: unknown key",
        ),
        (
            {"hyperparams.n_epochs": {"distribution": "int", "low": 0, "high": 3}},
            "params.hyperparams.n_epochs: 0 gives a bad config",
        ),
        (
            {"hyperparams.gamma": {"distribution": "uniform", "low": 0.9, "high": 1.5}},
            "params.hyperparams.gamma: 1.5 gives a bad config",
        ),
    ],
)
def test_spaces_that_give_bad_configs_fail_before_any_trial(
    tmp_path: Path, params: dict[str, Any], message: str, capsys: pytest.CaptureFixture
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(PENDULUM_TINY))
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"params": params}))
    code = main(
        [
            "sweep",
            str(config),
            "--space",
            str(space),
            "--trials",
            "2",
            "--sweep-dir",
            str(tmp_path / "sweep"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "sweep").exists()


def test_a_sweep_needs_periodic_evaluations(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**PENDULUM_TINY, "eval_freq": 0}))
    assert main(["sweep", str(config), "--space", "peg", "--trials", "2"]) == 2
    assert "eval_freq: a sweep stops and ranks trials" in capsys.readouterr().err


def test_success_comes_first_then_energy() -> None:
    spec = ScoreSpec(energy_penalty=0.02, energy_scale_j=150.0)
    frugal = trial_score({"success_rate": 0.8, "mean/energy_j": 100.0}, spec)
    hungry = trial_score({"success_rate": 0.8, "mean/energy_j": 300.0}, spec)
    better = trial_score({"success_rate": 0.9, "mean/energy_j": 700.0}, spec)
    assert better > frugal > hungry
    assert frugal == pytest.approx(0.8 - 0.02 * 100 / 150)
    assert trial_score({"success_rate": 0.5}, spec) == 0.5  # a cell without an energy meter


def test_trial_metrics_average_over_seeds_and_count_steps_across_them() -> None:
    progress = TrialProgress(ScoreSpec(energy_penalty=0.0))
    first = progress.metrics({"timesteps": 100, "success_rate": 0.2, "mean_return": -5.0})
    assert first["timesteps"] == 100 and first["score"] == pytest.approx(0.2)
    progress.finish_seed({"timesteps": 200, "success_rate": 0.6, "mean_return": -1.0}, 200)
    second = progress.metrics({"timesteps": 100, "success_rate": 1.0, "mean_return": -3.0})
    assert second["timesteps"] == 300 and second["seeds_done"] == 1
    assert second["score"] == pytest.approx(0.8) and second["return"] == pytest.approx(-2.0)
