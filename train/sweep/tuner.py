"""``robocell sweep``: hyperparameter search with Ray Tune, Optuna's TPE sampler and ASHA.

Layout of a sweep directory::

    SWEEP/sweep.json                    what the sweep was started with (a rerun must match)
    SWEEP/tune/                         Ray Tune's experiment state (``Tuner.restore`` reads it)
    SWEEP/trials/<trial>/s<seed>/       an ordinary run directory per trial and seed
    SWEEP/results.md, results.csv       one row per trial: parameters, score, status
    SWEEP/best_config.yaml              the best trial's config, ready for ``robocell train``

Each trial trains the config with its sampled parameters on the sweep's seeds one after the
other and reports every periodic evaluation to Tune: ``score`` (the space's score, averaged
over the trial's seeds so far: finished seeds' last evaluation and the current one) at
``timesteps`` counted over the trial's seeds. ASHA compares trials at equal ``timesteps``, so
it decides on the first seed's learning curve and later seeds confirm the survivors. A killed
sweep is continued by running the same command again: Tune restores its state, finished trials
stay finished, an interrupted trial resumes its run from the latest checkpoint.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from robocell.executor import ExecutorOptions, init_ray
from robocell.schema import to_dict
from robocell.train.config import RunConfig, config_digest, config_from_dict
from robocell.train.rundir import open_setup_dir
from robocell.train.sweep.space import (
    ScoreSpec,
    SweepSpace,
    apply_params,
    trial_score,
    tune_domains,
)
from robocell.util import atomic_write_json, atomic_write_text, canonical_json, sha256_bytes

FORMAT = "robocell-sweep/1"
COLUMNS = ("trial", "status", "score", "success_rate", "energy_j", "return", "timesteps")


@dataclass(frozen=True)
class SweepRequest:
    """What one ``robocell sweep`` call asks for."""

    config: RunConfig
    space: SweepSpace
    trials: int
    seeds: int
    """Training seeds per trial: the config's seed and the ones after it."""
    root: Path
    command: str

    def setup(self) -> dict[str, Any]:
        """What a rerun must match (``sweep.json``)."""
        return {
            "format": FORMAT,
            "config_digest": config_digest(self.config),
            "space_digest": sha256_bytes(canonical_json(to_dict(self.space))),
            "trials": self.trials,
            "seeds": self.seeds,
        }


@dataclass(frozen=True)
class TrialSetup:
    """What every trial needs besides its sampled parameters."""

    base: dict[str, Any]
    seeds: list[int]
    trials_dir: str
    command: str
    score: ScoreSpec


class TrialProgress:
    """Turns a trial's evaluation rows, seed after seed, into the metrics reported to Tune."""

    def __init__(self, score: ScoreSpec) -> None:
        self.score = score
        self.finished: list[dict[str, Any]] = []
        self.offset = 0

    def metrics(self, row: dict[str, Any]) -> dict[str, Any]:
        """The Tune metrics after evaluation ``row`` of the current seed."""
        rows = [*self.finished, row]
        energy = [r["mean/energy_j"] for r in rows if "mean/energy_j" in r]
        return {
            "score": sum(trial_score(r, self.score) for r in rows) / len(rows),
            "success_rate": sum(r["success_rate"] for r in rows) / len(rows),
            "energy_j": sum(energy) / len(energy) if energy else None,
            "return": sum(r["mean_return"] for r in rows) / len(rows),
            "timesteps": self.offset + int(row["timesteps"]),
            "seeds_done": len(self.finished),
        }

    def finish_seed(self, last_row: dict[str, Any], steps: int) -> None:
        """The current seed is trained; its last evaluation counts from now on."""
        self.finished.append(last_row)
        self.offset += steps


def sweep_trial(params: dict[str, Any], setup: TrialSetup) -> None:
    """One Tune trial: train the sampled config on every seed, reporting each evaluation."""
    from ray import tune

    from robocell.train.rundir import read_metrics
    from robocell.train.trainer import train_or_resume

    trial_dir = Path(setup.trials_dir) / tune.get_context().get_trial_id()
    data = apply_params(setup.base, params)
    progress = TrialProgress(setup.score)
    for seed in setup.seeds:
        config = config_from_dict({**data, "seed": seed, "run_name": None})
        run_dir = trial_dir / f"s{seed}"

        def report(row: dict[str, Any], total: int = config.total_timesteps) -> None:
            if row["timesteps"] < total:  # the last one after the run's final checkpoint
                tune.report(progress.metrics(row))

        train_or_resume(config, run_dir, setup.command, report)
        last = read_metrics(run_dir)[-1]
        tune.report(progress.metrics(last))
        progress.finish_seed(last, config.total_timesteps)


def run_sweep(request: SweepRequest, options: ExecutorOptions) -> list[dict[str, Any]]:
    """Run (or continue) the sweep; write the results table and the best config."""
    init_ray(options.address if options.use_ray else None)
    from ray import tune

    from robocell.train.sweep.trial_log import TrialLogger

    open_setup_dir(request.root, "sweep.json", request.setup(), "--sweep-dir")
    root = request.root.resolve()
    base = to_dict(request.config)
    seeds = [request.config.seed + k for k in range(request.seeds)]
    setup = TrialSetup(base, seeds, str(root / "trials"), request.command, request.space.score)
    trainable = tune.with_resources(
        tune.with_parameters(sweep_trial, setup=setup), {"cpu": request.config.cpus_per_run}
    )
    if tune.Tuner.can_restore(str(root / "tune")):
        tuner = tune.Tuner.restore(str(root / "tune"), trainable, resume_errored=True)
    else:
        run_config = tune.RunConfig(
            name="tune", storage_path=str(root), verbose=0, callbacks=[TrialLogger()]
        )
        tuner = tune.Tuner(
            trainable,
            param_space=tune_domains(request.space),
            tune_config=_tune_config(request),
            run_config=run_config,
        )
    rows = trial_rows(tuner.fit(), request)
    write_results(request, rows)
    return rows


def _tune_config(request: SweepRequest) -> Any:
    from optuna.samplers import TPESampler
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    asha = request.space.asha
    return tune.TuneConfig(
        metric="score",
        mode="max",
        search_alg=OptunaSearch(sampler=TPESampler(seed=request.space.sampler_seed)),
        scheduler=ASHAScheduler(
            time_attr="timesteps",
            max_t=_max_steps(request),
            grace_period=min(asha.grace_period_steps, _max_steps(request)),
            reduction_factor=asha.reduction_factor,
        ),
        num_samples=request.trials,
    )


def _max_steps(request: SweepRequest) -> int:
    return request.config.total_timesteps * request.seeds


def trial_rows(grid: Any, request: SweepRequest) -> list[dict[str, Any]]:
    """One row per trial, best score first: id, status, figures, parameters, run dirs."""
    rows = []
    for result in grid:
        metrics = result.metrics or {}
        trial_id = metrics.get("trial_id") or Path(result.path).name
        steps = metrics.get("timesteps", 0)
        status = "error" if result.error else "completed"
        if status == "completed" and steps < _max_steps(request):
            status = "stopped early"
        row = {key: metrics.get(key) for key in ("score", "success_rate", "energy_j", "return")}
        row.update(
            trial=trial_id,
            status=status,
            timesteps=steps,
            params={k: _plain(v) for k, v in result.config.items()},
            run_dir=str(request.root / "trials" / str(trial_id)),
        )
        rows.append(row)
    return sorted(rows, key=_rank)


def _rank(row: dict[str, Any]) -> tuple[int, float, float]:
    """Completed trials first, then by score, then by mean return (highest first)."""
    score, ret = (row[k] if row[k] is not None else float("-inf") for k in ("score", "return"))
    return (0 if row["status"] == "completed" else 1, -score, -ret)


def write_results(request: SweepRequest, rows: list[dict[str, Any]]) -> None:
    """``results.md``, ``results.csv``, ``results.json`` and ``best_config.yaml``."""
    root = request.root
    atomic_write_json(root / "results.json", rows)
    atomic_write_text(root / "results.csv", _csv(rows))
    atomic_write_text(root / "results.md", _markdown(request, rows))
    best = rows[0] if rows and rows[0]["status"] == "completed" else None
    if best is None:
        return
    data = apply_params(to_dict(request.config), best["params"])
    header = (
        f"# Best trial {best['trial']} of the sweep in {root} (score {best['score']:.4g} over "
        f"{request.seeds} seed(s)).\n# Train it: robocell train THIS_FILE --seeds 0-4\n"
    )
    config_from_dict(data)  # a best config is always a valid one
    atomic_write_text(root / "best_config.yaml", header + yaml.safe_dump(data, sort_keys=False))


def _csv(rows: list[dict[str, Any]]) -> str:
    keys = sorted({k for row in rows for k in row["params"]})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*COLUMNS, *keys])
    for row in rows:
        writer.writerow([*(row[k] for k in COLUMNS), *(row["params"].get(k) for k in keys)])
    return out.getvalue()


def _markdown(request: SweepRequest, rows: list[dict[str, Any]]) -> str:
    keys = sorted({k for row in rows for k in row["params"]})
    head = [*COLUMNS, *keys]
    lines = [
        f"# Sweep of {request.config.env_id} ({request.config.algo}): {len(rows)} trials, "
        f"{request.seeds} seed(s) each",
        "",
        "Score: success rate − energy penalty (see the space file); ties by mean return.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + " --- |" * len(head),
    ]
    for row in rows:
        cells = [*(row[k] for k in COLUMNS), *(row["params"].get(k) for k in keys)]
        lines.append("| " + " | ".join(_fmt(cell) for cell in cells) + " |")
    return "\n".join([*lines, ""])


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _plain(value: Any) -> Any:
    """Tune / Optuna values as plain YAML-safe Python values."""
    if hasattr(value, "item"):
        return value.item()
    return value
