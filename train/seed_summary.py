"""The summary over the seeds of a group: ``summary.json``, ``summary.md`` and ``summary.png``.

Per figure (``success``, ``energy_j``, ``cycle_time_s``, the cell's quality figures and the
episode ``return``): each seed's mean over its held-out episodes, the interquartile mean (IQM)
over seeds and its stratified-bootstrap 95 % CI (:func:`robocell.eval.stats.stratified_iqm`:
episodes resampled within each seed, rliable's interval estimate). With fewer than four seeds
the IQM trims nothing and equals the mean over seeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robocell.eval.stats import stratified_iqm
from robocell.train.evaluate import episode_return
from robocell.util import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from robocell.train.multiseed import SeedGroup

CONFIDENCE = 0.95
RESAMPLES = 2000
BOOTSTRAP_SEED = 0
PLOTTED = ("success", "energy_j", "cycle_time_s", "return")


def figure_summary(held_out: dict[int, list[dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """Per figure present in every seed's episodes: IQM, CI and the per-seed means."""
    rows = {
        seed: [{**m, "return": episode_return(m)} for m in eps] for seed, eps in held_out.items()
    }
    keys = set.intersection(*({k for m in eps for k in m} for eps in rows.values()))
    if any("fault" in m for eps in rows.values() for m in eps):
        keys.add("fault")  # present only when the physics blew up: 0 elsewhere
    table: dict[str, dict[str, Any]] = {}
    for key in sorted(k for k in keys if not k.startswith("return/")):
        strata = [
            [m.get(key, 0.0) for m in rows[seed] if key in m or key == "fault"] for seed in held_out
        ]
        value, low, high = stratified_iqm(strata, CONFIDENCE, BOOTSTRAP_SEED, RESAMPLES)
        per_seed = {str(seed): float(np.mean(s)) for seed, s in zip(held_out, strata, strict=True)}
        table[key] = {"iqm": value, "ci_low": low, "ci_high": high, "per_seed": per_seed}
    return table


def write_summary(
    group: SeedGroup, results: dict[int, dict[str, Any]], wall_s: float, backend: str
) -> dict[str, Any]:
    """Write ``summary.json``, ``summary.md`` and ``summary.png`` into the group directory."""
    figures = figure_summary({seed: r["episodes"] for seed, r in results.items()})
    summary = {
        "env_id": group.config.env_id,
        "algo": group.config.algo,
        **group.setup(),
        "statistic": "IQM over seeds of the per-seed mean",
        "interval": {
            "method": "stratified bootstrap, percentile",
            "confidence": CONFIDENCE,
            "resamples": RESAMPLES,
            "seed": BOOTSTRAP_SEED,
        },
        "figures": figures,
        "runs": {
            str(s): {k: r[k] for k in ("run_dir", "checkpoint", "timesteps", "wall_s")}
            for s, r in results.items()
        },
        "wall_s": round(wall_s, 1),
        "executor": backend,
    }
    atomic_write_json(group.root / "summary.json", summary)
    _plot(group.root / "summary.png", figures)
    atomic_write_text(group.root / "summary.md", _markdown(summary))
    return summary


def _markdown(summary: dict[str, Any]) -> str:
    seeds = [str(s) for s in summary["seeds"]]
    lines = [
        f"# {summary['env_id']} ({summary['algo']}), seeds {', '.join(seeds)}",
        "",
        f"Held-out episodes per seed: {summary['eval_episodes']} from seed "
        f"{summary['eval_first_seed']}. IQM over seeds of each seed's mean; 95 % CI by "
        f"stratified bootstrap (episodes resampled within each seed, {RESAMPLES} resamples).",
        "",
        "![per-seed means, IQM and CI](summary.png)",
        "",
        "| figure | IQM | 95 % CI | " + " | ".join(f"seed {s}" for s in seeds) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in seeds) + " |",
    ]
    for key, row in summary["figures"].items():
        cells = " | ".join(f"{row['per_seed'][s]:.4g}" for s in seeds)
        lines.append(
            f"| {key} | {row['iqm']:.4g} | [{row['ci_low']:.4g}, {row['ci_high']:.4g}] | {cells} |"
        )
    lines += ["", "| seed | run directory | steps | wall (s) |", "| --- | --- | --- | --- |"]
    for seed, run in summary["runs"].items():
        lines.append(f"| {seed} | {run['run_dir']} | {run['timesteps']} | {run['wall_s']:.0f} |")
    lines += ["", f"Total wall time {summary['wall_s']:.0f} s on {summary['executor']}.", ""]
    return "\n".join(lines)


def _plot(path: Path, figures: dict[str, dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in PLOTTED if k in figures] or list(figures)[:4]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        row = figures[key]
        values = list(row["per_seed"].values())
        ax.scatter(range(len(values)), values, color="tab:blue", label="seed mean", zorder=3)
        ax.axhline(row["iqm"], color="tab:red", label="IQM")
        ax.axhspan(row["ci_low"], row["ci_high"], color="tab:red", alpha=0.15, label="95 % CI")
        ax.set(title=key, xticks=range(len(values)), xticklabels=list(row["per_seed"]))
        ax.set_xlabel("seed")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
