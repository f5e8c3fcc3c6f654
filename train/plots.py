"""Learning curves as PNG from runs' ``metrics.jsonl`` (periodic evaluations).

``python -m robocell.train.plots RUN_DIR [RUN_DIR ...] -o curve.png [--baseline-energy-j J]``
draws evaluation success rate and energy per episode against timesteps, one line per run.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from robocell.errors import RobocellError
from robocell.train.rundir import read_metrics


def plot_learning_curves(
    run_dirs: Sequence[str | Path],
    out_png: str | Path,
    baseline_energy_j: float | None = None,
    labels: Sequence[str] | None = None,
) -> None:
    """Success rate and energy per episode of each run's evaluations, written to ``out_png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, (success_ax, energy_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    names = list(labels) if labels else [Path(run).resolve().name for run in run_dirs]
    for run_dir, label in zip(run_dirs, names, strict=True):
        rows = read_metrics(run_dir)
        if not rows:
            raise RobocellError(f"{run_dir}: no evaluations in metrics.jsonl")
        steps = [row["timesteps"] for row in rows]
        success_ax.plot(steps, [100 * row["success_rate"] for row in rows], marker="o", label=label)
        energy = [row.get("mean/energy_j", float("nan")) / 1000 for row in rows]
        energy_ax.plot(steps, energy, marker="o", label=label)
    if baseline_energy_j is not None:
        energy_ax.axhline(baseline_energy_j / 1000, color="grey", ls="--", label="scripted")
    success_ax.set(xlabel="timesteps", ylabel="evaluation success (%)", ylim=(-3, 103))
    energy_ax.set(xlabel="timesteps", ylabel="energy per episode (kJ)")
    for ax in (success_ax, energy_ax):
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:.0f}k"))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories")
    parser.add_argument("-o", "--out", required=True, help="PNG file to write")
    parser.add_argument("--baseline-energy-j", type=float, help="scripted controller's energy")
    parser.add_argument("--labels", nargs="+", help="legend label per run")
    args = parser.parse_args(argv)
    plot_learning_curves(args.runs, args.out, args.baseline_energy_j, args.labels)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
