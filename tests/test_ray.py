"""Seeds, sweeps, certification and improve challengers on a real local Ray (``num_cpus=2``).

One Ray session serves the whole module (starting Ray costs seconds); the commands attach to
it as they would to a cluster. Skipped, with the reason, only when the ``ray`` extra is not
installed (``make test`` installs it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from certtools import small_weld_spec, write_scripted_weld_bundle
from test_executor import PENDULUM_TINY

from robocell.cli import main
from robocell.eval import seeds
from robocell.eval.certify import certify
from robocell.eval.keys import generate_keypair, load_private_key
from robocell.eval.spec import parse_spec
from robocell.executor import ExecutorOptions
from robocell.train.improve.policy_registry import PolicyRegistry

ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[ray]'")
pytestmark = pytest.mark.xdist_group("ray")  # one worker, one Ray session for the module

FIXED_SEED = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
SPACE = {
    "params": {
        "hyperparams.learning_rate": {"distribution": "loguniform", "low": 1e-4, "high": 1e-2},
        "hyperparams.n_epochs": {"distribution": "int", "low": 1, "high": 3},
    },
    "asha": {"grace_period_steps": 128, "reduction_factor": 2},
}


@pytest.fixture(scope="module", autouse=True)
def ray_session() -> Any:
    ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_seeds_on_ray_equal_the_local_runs(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "c.yaml", PENDULUM_TINY)
    common = ["train", str(config), "--seeds", "0-1", "--eval-episodes", "2", "--quiet"]
    assert main([*common, "--run-dir", str(tmp_path / "ray"), "--ray"]) == 0
    assert main([*common, "--run-dir", str(tmp_path / "local")]) == 0
    on_ray = json.loads((tmp_path / "ray" / "summary.json").read_text())
    local = json.loads((tmp_path / "local" / "summary.json").read_text())
    assert on_ray["executor"] == "ray" and local["executor"] == "local"
    assert on_ray["figures"] == local["figures"]  # same seed, same run, wherever it ran
    for seed in (0, 1):
        run = tmp_path / "ray" / f"s{seed}"
        assert (run / "checkpoints" / "latest.json").exists() and (run / "best").is_dir()


def test_a_certificate_run_on_ray_equals_the_local_one(tmp_path: Path) -> None:
    bundle = write_scripted_weld_bundle(tmp_path / "bundle")
    key = load_private_key(generate_keypair(tmp_path / "keys")[0])
    spec = parse_spec(small_weld_spec(6))
    commit = seeds.commitment(FIXED_SEED)
    results = {
        name: certify(
            bundle,
            spec,
            FIXED_SEED,
            commit,
            key,
            tmp_path / name,
            workers=2,
            progress=False,
            executor=options,
        )
        for name, options in (
            ("local", ExecutorOptions(workers=2)),
            ("ray", ExecutorOptions(use_ray=True)),
        )
    }
    local, on_ray = (results[name].statement["predicate"] for name in ("local", "ray"))
    assert (tmp_path / "ray" / "episodes.jsonl").read_bytes() == (
        tmp_path / "local" / "episodes.jsonl"
    ).read_bytes()
    for key_name in ("started_at", "finished_at", "episodes_wall_time_s"):
        local["run"].pop(key_name), on_ray["run"].pop(key_name)
    # The report repeats the run's times, so its digest differs; everything else is equal.
    local.pop("report"), on_ray.pop("report")
    assert on_ray == local and on_ray["run"] == {"workers": 2}
    assert results["ray"].statement["subject"] == results["local"].statement["subject"]


def test_a_sweep_on_ray_writes_trials_results_and_a_best_config(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "c.yaml", PENDULUM_TINY)
    space = write_yaml(tmp_path / "space.yaml", SPACE)
    sweep = tmp_path / "sweep"
    args = [
        "sweep",
        str(config),
        "--space",
        str(space),
        "--trials",
        "2",
        "--seeds",
        "2",
        "--sweep-dir",
        str(sweep),
        "--ray",
    ]
    assert main(args) == 0
    rows = json.loads((sweep / "results.json").read_text())
    assert len(rows) == 2 and {row["status"] for row in rows} <= {"completed", "stopped early"}
    completed = [row for row in rows if row["status"] == "completed"]
    assert completed and completed[0]["timesteps"] == 2 * PENDULUM_TINY["total_timesteps"]
    for seed in (0, 1):  # a completed trial trained both seeds, each an ordinary run
        run = Path(completed[0]["run_dir"]) / f"s{seed}"
        assert yaml.safe_load((run / "config.yaml").read_text())["seed"] == seed
    best = yaml.safe_load((sweep / "best_config.yaml").read_text())
    assert (
        best["hyperparams"]["learning_rate"] == completed[0]["params"]["hyperparams.learning_rate"]
    )
    assert "| trial | status | score |" in (sweep / "results.md").read_text()
    # Run again: Tune restores the finished sweep, nothing trains again.
    commands = (run / "command.txt").read_text()
    assert main(args) == 0 and (run / "command.txt").read_text() == commands
    # The best config is ready for robocell train.
    assert (
        main(
            [
                "train",
                str(sweep / "best_config.yaml"),
                "--seeds",
                "0",
                "--eval-episodes",
                "1",
                "--run-dir",
                str(tmp_path / "best"),
                "--quiet",
            ]
        )
        == 0
    )


def test_a_killed_sweep_continues_where_it_stopped(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "c.yaml", {**PENDULUM_TINY, "total_timesteps": 640})
    space = write_yaml(tmp_path / "space.yaml", SPACE)
    sweep = tmp_path / "sweep"
    args = ["sweep", str(config), "--space", str(space), "--trials", "2", "--sweep-dir", str(sweep)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "robocell", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while not list(sweep.glob("trials/*/s0/checkpoints/latest.json")):
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "no trial checkpointed"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert not (sweep / "results.json").exists()
    rerun = subprocess.run(
        [sys.executable, "-m", "robocell", *args], capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    rows = json.loads((sweep / "results.json").read_text())
    assert len(rows) == 2
    resumed = [
        p for p in sweep.glob("trials/*/s0/command.txt") if len(p.read_text().splitlines()) > 1
    ]
    assert resumed, "the interrupted trial was not resumed from its checkpoint"


def test_improve_trains_its_challengers_on_ray(tmp_path: Path) -> None:
    data = {
        **PENDULUM_TINY,
        "eval_freq": 0,
        "checkpoint_freq": 0,
        "improve": {"steps_per_round": 128, "validation_episodes": 2},
    }
    config = write_yaml(tmp_path / "c.yaml", data)
    reg = tmp_path / "reg"
    args = [
        "improve",
        str(config),
        "--rounds",
        "1",
        "--registry",
        str(reg),
        "--quiet",
        "--challengers",
        "2",
        "--ray",
    ]
    assert main(args) == 0
    registry = PolicyRegistry.open(reg)
    round_1 = [v for v in registry.versions if v["round"] == 1]
    assert [v["id"] for v in round_1] == ["v001a", "v001b"]
    assert sum(v["decision"] == "promoted" for v in round_1) <= 1
    assert all((reg / v["run_dir"] / "checkpoints" / "latest.json").exists() for v in round_1)
