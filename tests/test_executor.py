"""The executor seam without Ray: job order, errors, how Ray is chosen and attached, --seeds.

Runs on Ray itself are in tests/test_ray.py.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from robocell import executor
from robocell.cli import main
from robocell.errors import RobocellError
from robocell.eval.stats import iqm, stratified_iqm
from robocell.executor import ExecutorOptions, executor_options, run_jobs
from robocell.train.multiseed import parse_seeds

PENDULUM_TINY: dict[str, Any] = {
    "env_id": "Pendulum-v1",
    "algo": "ppo",
    "total_timesteps": 256,
    "hyperparams": {"n_steps": 128, "batch_size": 64, "n_epochs": 1},
    "policy_kwargs": {"net_arch": [16]},
    "eval_freq": 128,
    "eval_episodes": 1,
    "checkpoint_freq": 128,
}


def slow_square(x: int, delay_s: float) -> int:
    time.sleep(delay_s)
    return x * x


def fail_on_two(x: int) -> int:
    if x == 2:
        raise RobocellError("job 2 is bad")
    return x


@pytest.mark.parametrize("workers", [1, 2])
def test_results_come_back_in_job_order(workers: int) -> None:
    done: list[int] = []
    jobs = [(1, 0.3), (2, 0.0), (3, 0.1)]
    results = run_jobs(
        slow_square, jobs, ExecutorOptions(workers=workers), on_done=lambda i, r: done.append(i)
    )
    assert results == [1, 4, 9]
    assert sorted(done) == [0, 1, 2]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_job_raises_its_own_error(workers: int) -> None:
    with pytest.raises(RobocellError, match="job 2 is bad"):
        run_jobs(fail_on_two, [(1,), (2,), (3,)], ExecutorOptions(workers=workers))


def test_ray_is_chosen_by_flag_address_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert executor_options() == ExecutorOptions(False, None, 1)
    assert executor_options(ray_flag=True).use_ray
    assert executor_options(address="10.0.0.1:6379") == ExecutorOptions(True, "10.0.0.1:6379", 1)
    monkeypatch.setenv("RAY_ADDRESS", "auto")
    assert executor_options(workers=3) == ExecutorOptions(True, "auto", 3)


class FakeRay(types.ModuleType):
    """Records how ``ray.init`` is called."""

    def __init__(self) -> None:
        super().__init__("ray")
        self.calls: list[dict[str, Any]] = []

    def is_initialized(self) -> bool:
        return bool(self.calls)

    def init(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


def test_attaching_passes_no_resources_and_a_local_ray_gets_the_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    executor.init_ray("10.0.0.1:6379")
    executor.init_ray(None)  # already initialised: used as it is
    assert fake.calls == [{"address": "10.0.0.1:6379"}]
    local = FakeRay()
    monkeypatch.setitem(sys.modules, "ray", local)
    monkeypatch.setattr(executor.os, "cpu_count", lambda: 7)
    executor.init_ray(None)
    assert local.calls == [{"num_cpus": 7, "include_dashboard": False}]


def test_ray_missing_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(RobocellError, match=r"pip install robocell\[ray\]"):
        run_jobs(fail_on_two, [(1,)], ExecutorOptions(use_ray=True))
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(PENDULUM_TINY))
    code = main(["train", str(config), "--seeds", "0-1", "--ray", "--run-dir", str(tmp_path / "g")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install robocell[ray]" in err and "Traceback" not in err


# ---------------------------------------------------------------------- seeds and statistics
def test_seed_lists_and_ranges() -> None:
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,3,7") == [0, 3, 7]
    assert parse_seeds("0-1,10") == [0, 1, 10]
    for bad in ("", "a", "4-2", "1,1", "-3", "0-"):
        with pytest.raises(RobocellError, match="--seeds"):
            parse_seeds(bad)


def test_stratified_iqm_resamples_episodes_within_each_seed() -> None:
    rng = np.random.default_rng(1)
    means = [0.1, 0.5, 0.55, 0.6, 3.0]  # the outer seeds are trimmed by the IQM
    strata = [rng.normal(mu, 0.1, 40) for mu in means]
    value, low, high = stratified_iqm(strata, seed=0)
    assert value == pytest.approx(iqm([s.mean() for s in strata]))
    assert 0.45 < low < value < high < 0.7
    assert stratified_iqm(strata, seed=0) == (value, low, high)  # reproducible by seed
    # Constant episodes within every seed: resampling inside a seed changes nothing, so the
    # interval collapses (resampling across seeds would not).
    flat = [np.full(10, mu) for mu in means]
    point, low, high = stratified_iqm(flat)
    assert low == pytest.approx(point) and high == pytest.approx(point)
    wider = stratified_iqm([s[:10] for s in strata], seed=0)
    assert wider[2] - wider[1] > high - low
    with pytest.raises(ValueError):
        stratified_iqm([[1.0], []])


# ---------------------------------------------------------------------- --seeds, locally
def test_seed_group_trains_summarises_and_continues(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(PENDULUM_TINY))
    group = tmp_path / "group"
    args = [
        "train",
        str(config),
        "--seeds",
        "3-4",
        "--run-dir",
        str(group),
        "--eval-episodes",
        "2",
        "--workers",
        "2",
        "--quiet",
    ]
    assert main(args) == 0
    summary = json.loads((group / "summary.json").read_text())
    assert summary["seeds"] == [3, 4] and summary["executor"] == "local"
    for seed in (3, 4):
        run = group / f"s{seed}"
        assert yaml.safe_load((run / "config.yaml").read_text())["seed"] == seed
        assert (run / "checkpoints" / "latest.json").exists() and list((run / "tb").iterdir())
        held_out = json.loads((group / "held_out" / f"s{seed}.json").read_text())
        assert held_out["first_seed"] == 2_000_000 and len(held_out["episodes"]) == 2
    row = summary["figures"]["return"]
    assert set(row["per_seed"]) == {"3", "4"} and row["ci_low"] <= row["iqm"] <= row["ci_high"]
    assert "| return |" in (group / "summary.md").read_text()
    assert (group / "summary.png").stat().st_size > 1000
    # The same command again trains nothing and writes the same figures.
    stamp = (group / "s3" / "metrics.jsonl").read_text()
    assert main(args) == 0
    assert (group / "s3" / "metrics.jsonl").read_text() == stamp
    assert json.loads((group / "summary.json").read_text())["figures"] == summary["figures"]
    # Another setup in the same directory is refused, naming what changed.
    assert main([*args[:3], "3-5", *args[4:]]) == 2


def test_same_seed_same_run(tmp_path: Path) -> None:
    from robocell.train.config import config_from_dict
    from robocell.train.multiseed import train_and_evaluate

    data = {**PENDULUM_TINY, "seed": 5}
    config_from_dict(data)  # valid
    first = train_and_evaluate(data, str(tmp_path / "a"), "test", 2_000_000, 2)
    second = train_and_evaluate(data, str(tmp_path / "b"), "test", 2_000_000, 2)
    assert first["episodes"] == second["episodes"]


def test_bad_seed_options_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(PENDULUM_TINY))
    assert main(["train", str(config), "--seeds", "2-1"]) == 2
    assert main(["train", str(config), "--seeds", "0-1", "--seed", "3"]) == 2
    err = capsys.readouterr().err
    assert "runs backwards" in err and "not both" in err and "Traceback" not in err


def test_ctrl_c_stops_the_group_and_the_same_command_continues(tmp_path: Path) -> None:
    from test_train import spawn, wait_for_checkpoint

    data = {**PENDULUM_TINY, "total_timesteps": 3072, "eval_freq": 1024, "checkpoint_freq": 256}
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(data))
    group = tmp_path / "group"
    args = ["train", str(config), "--seeds", "0-1", "--run-dir", str(group), "--quiet",
            "--eval-episodes", "1"]  # fmt: skip
    proc = spawn(*args)
    wait_for_checkpoint(group / "s0", proc, at_least=256)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "run the same command again to continue" in stderr and "Traceback" not in stderr
    assert not (group / "s1").exists()  # no seed starts after the interrupt
    saved = json.loads((group / "s0" / "checkpoints" / "latest.json").read_text())["timesteps"]
    assert saved < 3072
    assert main(args) == 0  # resumes seed 0 from its checkpoint, then trains seed 1
    assert len((group / "s0" / "command.txt").read_text().splitlines()) == 2
    assert json.loads((group / "summary.json").read_text())["runs"]["0"]["timesteps"] >= 3072
