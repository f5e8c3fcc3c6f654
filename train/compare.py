"""``robocell compare``: trained policies against their cell's scripted controller, paired by seed.

Each input is a training run directory (its best model, played as ``robocell eval`` plays it:
the run's own env, residual included, deterministic action) or a bundle directory (played as
``robocell rollout`` plays it). The scripted controller is the one ``robocell baseline`` runs,
on the plain cell (a weld run's residual env is compared with the plain scripted welder).
Every policy plays the same held-out seeds, so each seed gives a pair of episodes.

Per policy: success rate, energy per good part (all energy over the successful parts), the
mean of every episode figure, and the paired differences with the scripted controller, each
with a percentile-bootstrap 95 % CI over the seeds (seeds drawn with replacement, each keeping
its pair; :func:`robocell.eval.stats.bootstrap_ci`, 9 999 resamples, seed 0). Across the
policies (training seeds of one config): the IQM of the per-episode savings over the
policies × seeds matrix with rliable's stratified bootstrap (Agarwal et al. 2021).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robocell.envs.rollout import Policy, episode_seeds, summarize
from robocell.errors import RobocellError
from robocell.eval.stats import bootstrap_ci, iqm, statistic_function
from robocell.train.evaluate import run_episodes
from robocell.util import atomic_write_text

if TYPE_CHECKING:
    import gymnasium as gym

RESAMPLES = 9999
CONFIDENCE = 0.95
BOOTSTRAP_SEED = 0
SCRIPTED = "scripted"
Episodes = list[dict[str, float]]
Interval = dict[str, float]


@dataclass(frozen=True)
class Contender:
    """One policy to compare: where it came from, its cell, and how to build env and policy."""

    path: str
    kind: str
    env_id: str
    build: Callable[[], tuple[gym.Env, Policy]]

    def play(self, seeds: Sequence[int], plant: Mapping[str, Any] | None = None) -> Episodes:
        """``episode_metrics`` of one episode per seed, in a fresh env (its plant parameters
        set to ``plant``) closed afterwards."""
        env, policy = self.build()
        try:
            if plant:
                configure_plant(env, plant)
            return run_episodes(env, policy, seeds)
        finally:
            env.close()


def configure_plant(env: gym.Env, plant: Mapping[str, Any]) -> None:
    """Set plant parameters of a cell; a RobocellError naming the one it refuses."""
    try:
        env.unwrapped.configure(**plant)
    except ValueError as exc:
        raise RobocellError(f"--plant: {exc}") from None


def open_contender(path: str) -> Contender:
    """A run directory (it has ``config.yaml``) or a bundle (``manifest.json``); else an error.

    Only the config or the bundle is read here; a run's model is loaded when it plays.
    """
    from robocell.agents.bundle import MANIFEST_FILE, load_bundle
    from robocell.train.rundir import RunPaths, read_config

    root = Path(path)
    if RunPaths(root).config.is_file():
        return Contender(path, "run", read_config(root).env_id, lambda: _run_policy(root))
    if (root / MANIFEST_FILE).is_file():
        bundle = load_bundle(root)
        return Contender(path, "bundle", bundle.env_id, lambda: (bundle.make_env(), bundle))
    if not root.is_dir():
        raise RobocellError(f"{path}: no such directory (give a run or a bundle directory)")
    raise RobocellError(
        f"{path}: neither a training run (no config.yaml) nor a bundle (no {MANIFEST_FILE})"
    )


def _run_policy(root: Path) -> tuple[gym.Env, Policy]:
    from robocell.train.evaluate import model_policy
    from robocell.train.rundir import load_run
    from robocell.train.vec_env import make_run_env

    run = load_run(root)
    return make_run_env(run.config), model_policy(run.model, run.normalizer)


def scripted_contender(env_id: str) -> Contender:
    """The cell's scripted controller on the plain cell, as ``robocell baseline`` runs it."""
    from robocell.envs import CELLS

    if env_id not in CELLS:
        raise RobocellError(f"{env_id}: no scripted controller to compare with")
    return Contender(SCRIPTED, SCRIPTED, env_id, lambda: _scripted_policy(env_id))


def _scripted_policy(env_id: str) -> tuple[gym.Env, Policy]:
    from robocell.envs.make import make_cell, make_controller

    env = make_cell(env_id)
    return env, make_controller(env_id, env.unwrapped)


def one_cell(contenders: Sequence[Contender]) -> str:
    """The env id all contenders share; a RobocellError naming each cell otherwise."""
    cells = {c.env_id for c in contenders}
    if len(cells) > 1:
        found = ", ".join(f"{c.path} is {c.env_id}" for c in contenders)
        raise RobocellError(f"policies of different cells cannot be compared ({found})")
    return cells.pop()


# ---------------------------------------------------------------------- statistics
def energy_per_good_part(energy_j: np.ndarray, success: np.ndarray) -> np.ndarray:
    """Σ energy / Σ successes along the last axis (inf when nothing succeeded)."""
    good = success.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(good > 0, energy_j.sum(axis=-1) / np.maximum(good, 1), np.inf)


def figure(episodes: Episodes, key: str) -> np.ndarray:
    """One figure per episode (NaN where an episode lacks it: one halted on a fault)."""
    return np.array([m.get(key, np.nan) for m in episodes], dtype=float)


def paired_ci(columns: np.ndarray, statistic: Callable[..., np.ndarray]) -> Interval:
    """``statistic`` of per-seed figures (rows: figures, columns: seeds) with its paired CI.

    The bootstrap draws seeds with replacement, every figure of a seed staying together, so
    the policy's and the scripted controller's episodes of one seed are resampled as a pair.
    ``statistic`` takes the rows and reduces along the last axis.
    """

    def of_seeds(seeds: np.ndarray, axis: int = -1) -> np.ndarray:
        # Resampled seed indices, one resample per row: scipy always reduces the last axis.
        return statistic(*columns[:, seeds.astype(int)])

    low, high = bootstrap_ci(np.arange(columns.shape[1]), of_seeds, CONFIDENCE,
                             seed=BOOTSTRAP_SEED, resamples=RESAMPLES)  # fmt: skip
    return {"value": float(statistic(*columns)), "ci_low": low, "ci_high": high}


def _relative_epgp(
    e_t: np.ndarray, k_t: np.ndarray, e_s: np.ndarray, k_s: np.ndarray
) -> np.ndarray:
    return energy_per_good_part(e_t, k_t) / energy_per_good_part(e_s, k_s) - 1.0


def _relative_mean(trained: np.ndarray, scripted: np.ndarray) -> np.ndarray:
    return trained.mean(axis=-1) / scripted.mean(axis=-1) - 1.0


def _mean_difference(trained: np.ndarray, scripted: np.ndarray) -> np.ndarray:
    return trained.mean(axis=-1) - scripted.mean(axis=-1)


def vs_scripted(episodes: Episodes, scripted: Episodes) -> dict[str, Interval]:
    """Paired differences: relative for energy per good part, energy and cycle time
    (trained / scripted − 1, negative = less), absolute for success (trained − scripted)."""

    def pair(key: str) -> np.ndarray:
        return np.array([figure(episodes, key), figure(scripted, key)])

    energy, cycle, success = pair("energy_j"), pair("cycle_time_s"), pair("success")
    epgp = np.array([energy[0], success[0], energy[1], success[1]])
    return {
        "energy_per_good_part_j": paired_ci(epgp, _relative_epgp),
        "energy_j": paired_ci(energy, _relative_mean),
        "cycle_time_s": paired_ci(cycle, _relative_mean),
        "success": paired_ci(success, _mean_difference),
    }


def iqm_stratified(scores: np.ndarray) -> Interval:
    """IQM of a runs × tasks score matrix with rliable's stratified-bootstrap 95 % CI.

    rliable's scheme: each resample draws, for every task (here: an episode seed) separately,
    as many runs as there are with replacement; the IQM is over the whole resampled matrix.
    """
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    n_runs, n_tasks = scores.shape
    picks = rng.integers(0, n_runs, (RESAMPLES, n_runs, n_tasks))
    resampled = np.take_along_axis(scores[None], picks, axis=1).reshape(RESAMPLES, -1)
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(statistic_function("iqm")(resampled, axis=1), [tail, 100 - tail])
    return {"iqm": iqm(scores.ravel()), "ci_low": float(low), "ci_high": float(high)}


def across_policies(policies: Mapping[str, Episodes], scripted: Episodes) -> dict[str, Interval]:
    """IQM over policies × seeds of the per-episode energy and cycle-time saving
    (1 − trained / scripted, positive = better) and of success."""
    result = {}
    for key in ("energy_j", "cycle_time_s"):
        base = figure(scripted, key)
        result[f"{key}_saving"] = iqm_stratified(
            np.array([1.0 - figure(eps, key) / base for eps in policies.values()])
        )
    result["success"] = iqm_stratified(np.array([figure(e, "success") for e in policies.values()]))
    return result


def summary(episodes: Episodes) -> dict[str, float]:
    """``robocell baseline``'s figures (means of the keys every episode has) and energy per
    good part."""
    common = set.intersection(*(set(m) for m in episodes))
    result = summarize([{k: m[k] for k in common} for m in episodes])
    result["energy_per_good_part_j"] = float(
        energy_per_good_part(figure(episodes, "energy_j"), figure(episodes, "success"))
    )
    return result


# ---------------------------------------------------------------------- the command
def compare(
    paths: Sequence[str],
    seeds: Sequence[int],
    log: Callable[[str], None] | None = None,
    plant: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Play the scripted controller and every policy on ``seeds``, each cell's plant
    parameters set to ``plant``: the report, and the episodes
    (``{"scripted": [...], "policies": {path: [...]}}``).

    All inputs are opened (and their cells checked) before any episode is played; ``log``
    gets a line as each one starts playing.
    """
    started, cpu = time.monotonic(), time.process_time()
    contenders = [open_contender(path) for path in dict.fromkeys(paths)]
    baseline = scripted_contender(one_cell(contenders))
    # The scripted controller plays first: a bad plant name or value is refused before any
    # episode is played.
    scripted = _play_logged(baseline, seeds, log, plant)
    policies = {c.path: _play_logged(c, seeds, log, plant) for c in contenders}
    report = {
        "env_id": baseline.env_id,
        "plant": dict(plant or {}),
        "seeds": [seeds[0], seeds[-1]],
        "episodes": len(seeds),
        "bootstrap": {"resamples": RESAMPLES, "confidence": CONFIDENCE, "seed": BOOTSTRAP_SEED},
        SCRIPTED: summary(scripted),
        "policies": {c.path: _policy_report(c, policies[c.path], scripted) for c in contenders},
        "across_policies": across_policies(policies, scripted),
    }
    report["wall_s"], report["cpu_s"] = time.monotonic() - started, time.process_time() - cpu
    return report, {SCRIPTED: scripted, "policies": policies}


def _policy_report(contender: Contender, episodes: Episodes, scripted: Episodes) -> dict[str, Any]:
    return {
        "kind": contender.kind,
        **summary(episodes),
        "vs_scripted": vs_scripted(episodes, scripted),
    }


def _play_logged(
    contender: Contender,
    seeds: Sequence[int],
    log: Callable[[str], None] | None,
    plant: Mapping[str, Any] | None,
) -> Episodes:
    if log is not None:
        log(f"playing {contender.path} ({contender.kind}) on {len(seeds)} seeds")
    return contender.play(seeds, plant)


def run_compare(
    paths: Sequence[str],
    episodes: int,
    first_seed: int,
    as_json: bool,
    output: str | None,
    plant: Mapping[str, Any] | None = None,
) -> int:
    """``robocell compare``: print the tables (or one JSON line) and write ``output``."""
    seeds = episode_seeds(first_seed, episodes)
    report, played = compare(paths, seeds, lambda line: print(line, flush=True), plant)
    if output is not None:
        atomic_write_text(output, json.dumps({"report": report, "episodes": played}) + "\n")
    if as_json:
        print(json.dumps(report, sort_keys=True))
    else:
        print("\n".join(report_lines(report)))
    return 0


# ---------------------------------------------------------------------- the tables
# Table row → the paired difference shown beside it.
PAIRED_ROWS = {
    "success_rate": "success",
    "energy_per_good_part_j": "energy_per_good_part_j",
    "mean/energy_j": "energy_j",
    "mean/cycle_time_s": "cycle_time_s",
}


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report as text: one table per policy, then the IQM across policies."""
    first, last = report["seeds"]
    lines = [
        f"{report['env_id']} on {report['episodes']} held-out seeds {first}…{last}; 95 % CIs:"
        f" percentile bootstrap over the seeds, {RESAMPLES} resamples"
    ]
    if report["plant"]:
        lines.append("plant: " + ", ".join(f"{k}={v}" for k, v in report["plant"].items()))
    for path, row in report["policies"].items():
        lines += ["", *_policy_table(path, row, report[SCRIPTED])]
    runs = len(report["policies"])
    lines += [
        "",
        f"IQM over the {runs} × {report['episodes']} policies × seeds matrix "
        "(saving = 1 − policy / scripted, per episode);",
        "95 % CIs: stratified bootstrap, the policies resampled within each seed",
    ]
    if runs == 1:
        lines.append("  (one policy: the bootstrap has no other to draw, each CI is the IQM)")
    for key, row in report["across_policies"].items():
        lines.append(f"  {key:30s} {_number(row['iqm'])}   {_interval(row, 1.0, '.4g')}")
    lines.append(f"wall {report['wall_s']:.1f} s, CPU {report['cpu_s']:.1f} s")
    return lines


def _policy_table(path: str, row: dict[str, Any], scripted: dict[str, float]) -> list[str]:
    figures = sorted(k for k in {*scripted, *row} if k.startswith("mean/"))
    keys = dict.fromkeys([*PAIRED_ROWS, *figures])
    lines = [
        f"{path} ({row['kind']})",
        f"  {'figure':30s} {'scripted':>12s} {'policy':>12s}   policy vs scripted [95 % CI]",
    ]
    for key in keys:
        if key.startswith("mean/return/") or key == "mean/success":
            continue  # reward sums, as episode lines leave them out; success is success_rate
        text = f"  {key:30s} {_number(scripted.get(key))} {_number(row.get(key))}"
        diff = row["vs_scripted"].get(PAIRED_ROWS.get(key, ""))
        lines.append(text if diff is None else f"{text}   {_difference(key, diff)}")
    return lines


def _number(value: float | None) -> str:
    return f"{'—':>12s}" if value is None else f"{value:12.4g}"


def _difference(key: str, diff: Interval) -> str:
    if key == "success_rate":
        return f"{diff['value']:+.3f} {_interval(diff, 1.0, '+.3f')}"
    return f"{100 * diff['value']:+.1f} % {_interval(diff, 100.0, '+.1f')}"


def _interval(row: Interval, scale: float, spec: str) -> str:
    return f"[{scale * row['ci_low']:{spec}}, {scale * row['ci_high']:{spec}}]"
