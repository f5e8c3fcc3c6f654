"""PNG plots of a certificate: the criteria with their bounds, and each figure's distribution.

Plots are made with matplotlib's Agg backend and saved without a timestamp, so the same
numbers give the same bytes on one platform.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from robocell.eval.decision import CriterionResult, Evaluation, FigureResult
from robocell.eval.spec import BenchmarkSpec, Criterion

PLOTS_DIR = "plots"


def plot_files(
    spec: BenchmarkSpec, evaluation: Evaluation, records: list[dict[str, Any]]
) -> dict[str, bytes]:
    """``{relative path: PNG}``: the criteria plot and one histogram per figure."""
    criteria = [*evaluation.criteria, *evaluation.bucket_criteria]
    plots = {f"{PLOTS_DIR}/criteria.png": _criteria_plot(criteria)}
    for figure in evaluation.figures:
        values = [r["metrics"].get(figure.metric) for r in records]
        thresholds = [c for c in spec.criteria if c.metric == figure.metric]
        plots[f"{PLOTS_DIR}/{figure.name}.png"] = _figure_plot(figure, values, thresholds)
    return plots


def _criteria_plot(criteria: list[CriterionResult]) -> bytes:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 1.4 + 0.5 * len(criteria)))
    rows = np.arange(len(criteria))
    rates = [c.k / c.n if c.n else 0.0 for c in criteria]
    ax.barh(rows, rates, color="#9ecae1", label="observed rate k/n")
    ax.scatter(
        [c.clopper_pearson_lower for c in criteria],
        rows,
        color="#08519c",
        zorder=3,
        label="Clopper–Pearson lower bound (α/m)",
    )
    ax.scatter(
        [c.p0 for c in criteria],
        rows,
        marker="|",
        s=400,
        color="#cb181d",
        zorder=4,
        label="required p0",
    )
    ax.set_yticks(rows, [c.name for c in criteria])
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("probability")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.55), ncol=3, fontsize=7)
    return figure_png(fig)


def _figure_plot(
    figure: FigureResult, values: list[float | None], thresholds: list[Criterion]
) -> bytes:
    plt = pyplot()
    finite = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    if finite.size:
        ax.hist(finite, bins=min(30, max(5, finite.size // 4)), color="#bdbdbd")
    for value, style, label in (
        (figure.value, "-", figure.statistic),
        (figure.ci_low, "--", f"{figure.confidence:.0%} CI"),
        (figure.ci_high, "--", None),
    ):
        if value is not None:
            ax.axvline(value, color="#08519c", linestyle=style, label=label)
    if figure.limit is not None:
        ax.axvline(figure.limit, color="#cb181d", label=f"limit {figure.op} {figure.limit:g}")
    for criterion in thresholds:  # a per-episode criterion on the same metric
        label = f"criterion {criterion.name}: {criterion.op} {criterion.value:g}"
        ax.axvline(criterion.value, color="#e6550d", linestyle=":", label=label)
    ax.set_xlabel(f"{figure.metric} ({figure.unit})" if figure.unit else figure.metric)
    ax.set_ylabel("episodes")
    ax.set_title(f"{figure.name}: {figure.verdict}")
    ax.legend(fontsize=7)
    return figure_png(fig)


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig: Any) -> bytes:
    """A figure as PNG bytes (no timestamp in the metadata); closes the figure."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    pyplot().close(fig)
    return buffer.getvalue()
