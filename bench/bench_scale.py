"""Speed-up of 2 Ray workers over 1 for seeds, a sweep and certification (docs/SCALING.md).

Each workload runs twice on a fresh local Ray, first with ``num_cpus=1`` then ``num_cpus=2``
(Ray's start is not timed). Workloads: two training seeds of ``configs/peg_ppo.yaml`` cut to
4,096 steps with one env in-process (one CPU per run) and 4 held-out episodes each; a sweep of
two such trials over the packaged ``peg`` space; the packaged 100-episode weld certificate of
the scripted weld bundle. The 1-minute load average before each run is recorded: on a shared
machine the wall times depend on what else runs.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray

from robocell.executor import ExecutorOptions

CPUS = (1, 2)
OVERRIDES = [
    "total_timesteps=4096",
    "n_envs=1",
    "vec_env=dummy",
    "eval_freq=2048",
    "eval_episodes=2",
    "checkpoint_freq=2048",
]


def run(names: tuple[str, ...] = ("seeds", "sweep", "certify")) -> dict[str, Any]:
    """Time each named workload with 1 and 2 Ray CPUs; return wall times, loads, speed-ups."""
    workloads = {"seeds": _seeds, "sweep": _sweep, "certify": _certify}
    results: dict[str, Any] = {"cpus_on_machine": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            workload = workloads[name]
            for cpus in CPUS:
                ray.init(num_cpus=cpus, include_dashboard=False)
                try:
                    results[f"{name}_load_avg_before_{cpus}"] = round(os.getloadavg()[0], 2)
                    start = time.perf_counter()
                    workload(Path(tmp) / f"{name}-{cpus}")
                    results[f"{name}_wall_s_{cpus}_cpu"] = round(time.perf_counter() - start, 1)
                finally:
                    ray.shutdown()
            results[f"{name}_speedup_2_vs_1"] = round(
                results[f"{name}_wall_s_1_cpu"] / results[f"{name}_wall_s_2_cpu"], 2
            )
    return results


def _seeds(root: Path) -> None:
    from robocell.train.config import load_config
    from robocell.train.multiseed import SeedGroup, train_seeds

    config = load_config("configs/peg_ppo.yaml", OVERRIDES)
    group = SeedGroup(config, [0, 1], root, "bench", 2_000_000, 4)
    train_seeds(group, ExecutorOptions(use_ray=True), log=lambda line: None)


def _sweep(root: Path) -> None:
    from robocell.train.config import load_config
    from robocell.train.sweep.space import load_space
    from robocell.train.sweep.tuner import SweepRequest, run_sweep

    config = load_config("configs/peg_ppo.yaml", OVERRIDES)
    space = load_space("peg")[1]
    space = replace(space, asha=replace(space.asha, grace_period_steps=4096))  # no early stop
    run_sweep(SweepRequest(config, space, 2, 1, root, "bench"), ExecutorOptions(use_ray=True))


def _certify(root: Path) -> None:
    from robocell.agents.scripted import export_scripted
    from robocell.eval.certify import certify
    from robocell.eval.keys import generate_keypair, load_private_key
    from robocell.eval.seeds import commitment, new_master_seed
    from robocell.eval.spec import load_spec

    spec = load_spec("weld")  # the packaged benchmark: 100 episodes
    bundle = export_scripted("robocell/WeldSeam-v0", root / "bundle")
    key = load_private_key(generate_keypair(root / "keys")[0])
    seed = new_master_seed()
    certify(
        bundle,
        spec,
        seed,
        commitment(seed),
        key,
        root / "cert",
        progress=False,
        executor=ExecutorOptions(use_ray=True),
    )


if __name__ == "__main__":
    print(run())
