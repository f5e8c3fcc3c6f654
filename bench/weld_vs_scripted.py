"""Trained weld runs against the scripted welder on the same held-out seeds.

``python bench/weld_vs_scripted.py RUN [RUN ...] [--episodes 100] [--seed 2000000] [-o OUT]``

Plays each run's best model (``robocell eval``'s pipeline: the run's env, residual included,
deterministic action) and the scripted welder on the same seeds, and reports per run the
success rate, energy per good part (all energy over the successful parts), mean energy,
cycle time, heat input and lateral error, with the trained − scripted difference of energy per
good part as a paired percentile-bootstrap 95 % CI over the seeds (9,999 resamples, seed 0).
Across runs (training seeds) it reports the interquartile mean of the per-episode energy
saving and cycle-time saving with rliable's stratified bootstrap (Agarwal et al. 2021): the
score matrix is runs × seeds, each resample draws runs with replacement within every seed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from robocell.envs.rollout import episode_seeds, run_episode
from robocell.envs.weld.controller import ScriptedWelder

FIGURES = ("energy_j", "cycle_time_s", "heat_input_j_per_mm", "mean_lateral_error_mm")
RESAMPLES = 9999


def play(policy: Any, env: Any, seeds: list[int]) -> list[dict[str, float]]:
    """``episode_metrics`` of one episode per seed."""
    return [run_episode(env, policy, seed) for seed in seeds]


def play_scripted(seeds: list[int]) -> list[dict[str, float]]:
    """The scripted welder on ``seeds``."""
    from robocell.envs.make import make_cell

    env = make_cell("robocell/WeldSeam-v1")
    try:
        return play(ScriptedWelder(), env, seeds)
    finally:
        env.close()


def play_run(run_dir: str, seeds: list[int]) -> list[dict[str, float]]:
    """A run's best model on ``seeds``, through the run's own env (residual included)."""
    from robocell.train.evaluate import model_policy
    from robocell.train.rundir import load_run
    from robocell.train.vec_env import make_run_env

    run = load_run(run_dir)
    env = make_run_env(run.config)
    try:
        return play(model_policy(run.model, run.normalizer), env, seeds)
    finally:
        env.close()


def energy_per_good_part(episodes: np.ndarray, success: np.ndarray) -> np.ndarray:
    """Σ energy / Σ successes along the last axis (inf when nothing succeeded)."""
    good = success.sum(axis=-1)
    with np.errstate(divide="ignore"):
        return np.where(good > 0, episodes.sum(axis=-1) / np.maximum(good, 1), np.inf)


def paired_saving_ci(
    trained: list[dict[str, float]], scripted: list[dict[str, float]]
) -> dict[str, float]:
    """Relative difference of energy per good part, trained vs scripted, with a paired CI."""
    e_t, e_s = (np.array([m["energy_j"] for m in eps]) for eps in (trained, scripted))
    k_t, k_s = (np.array([m["success"] for m in eps]) for eps in (trained, scripted))
    rng = np.random.default_rng(0)
    index = rng.integers(0, len(e_t), (RESAMPLES, len(e_t)))
    ratio = energy_per_good_part(e_t[index], k_t[index]) / energy_per_good_part(
        e_s[index], k_s[index]
    )
    point = energy_per_good_part(e_t, k_t) / energy_per_good_part(e_s, k_s)
    low, high = np.percentile(ratio - 1.0, [2.5, 97.5])
    return {"relative": float(point - 1.0), "ci_low": float(low), "ci_high": float(high)}


def summary(episodes: list[dict[str, float]]) -> dict[str, float]:
    """Success rate, energy per good part and the mean of each figure."""
    success = np.array([m["success"] for m in episodes])
    energy = np.array([m["energy_j"] for m in episodes])
    result = {"success": float(success.mean()), "fault": float(sum("fault" in m for m in episodes))}
    result["energy_per_good_part_j"] = float(energy_per_good_part(energy, success))
    for name in FIGURES:
        result[f"mean_{name}"] = float(np.mean([m[name] for m in episodes]))
    return result


def iqm_stratified(scores: np.ndarray) -> dict[str, float]:
    """IQM of a runs × tasks score matrix with rliable's stratified-bootstrap 95 % CI."""
    rng = np.random.default_rng(0)
    n_runs, n_tasks = scores.shape
    picks = rng.integers(0, n_runs, (RESAMPLES, n_runs, n_tasks))
    resampled = np.take_along_axis(scores[None], picks, axis=1).reshape(RESAMPLES, -1)
    values = sps.trim_mean(resampled, 0.25, axis=1)
    low, high = np.percentile(values, [2.5, 97.5])
    return {"iqm": float(sps.trim_mean(scores.ravel(), 0.25)), "ci_low": low, "ci_high": high}


def across_runs(runs: dict[str, list], scripted: list[dict[str, float]]) -> dict[str, Any]:
    """IQM over runs × seeds of the per-episode relative savings (positive = better)."""
    result = {}
    for name in ("energy_j", "cycle_time_s"):
        base = np.array([m[name] for m in scripted])
        scores = np.array([[1.0 - m[name] / b for m, b in zip(eps, base, strict=True)]
                           for eps in runs.values()])  # fmt: skip
        result[f"{name}_saving"] = iqm_stratified(scores)
    success = np.array([[m["success"] for m in eps] for eps in runs.values()])
    result["success"] = iqm_stratified(success)
    return result


def main(argv: list[str]) -> None:
    """Play, compare, print (and write) one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2_000_000)
    parser.add_argument("-o", "--output", help="also write the JSON (and episodes) here")
    args = parser.parse_args(argv)
    seeds = episode_seeds(args.seed, args.episodes)
    started, cpu = time.monotonic(), time.process_time()
    scripted = play_scripted(seeds)
    runs = {run: play_run(run, seeds) for run in args.runs}
    report: dict[str, Any] = {"seeds": [seeds[0], seeds[-1]], "scripted": summary(scripted)}
    for run, episodes in runs.items():
        report[run] = {**summary(episodes), "energy_per_good_part_vs_scripted":
                       paired_saving_ci(episodes, scripted)}  # fmt: skip
    report["across_runs"] = across_runs(runs, scripted)
    report["wall_s"], report["cpu_s"] = time.monotonic() - started, time.process_time() - cpu
    text = json.dumps(report, indent=2, default=float)
    print(text)
    if args.output:
        data = {"report": report, "scripted": scripted, "runs": runs}
        Path(args.output).write_text(json.dumps(data, default=float))


if __name__ == "__main__":
    main(sys.argv[1:])
