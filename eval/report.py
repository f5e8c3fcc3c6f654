"""The human report of a certificate: ``report.md`` with PNG plots of the distributions.

The report is derived from the same numbers as the signed predicate; the predicate carries the
sha256 of every report file, so an edited report fails verification too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robocell.eval.decision import CriterionResult, Evaluation, FigureResult
from robocell.eval.spec import BenchmarkSpec, spec_digest
from robocell.util import atomic_write_bytes, atomic_write_text, sha256_bytes

REPORT_NAME = "report.md"
PLOTS_DIR = "plots"


def write_report(
    out_dir: str | Path,
    spec: BenchmarkSpec,
    evaluation: Evaluation,
    records: list[dict[str, Any]],
    subjects: dict[str, str],
    run: dict[str, Any],
) -> dict[str, str]:
    """Write ``report.md`` and its plots; returns ``{relative path: sha256}`` of every file."""
    out_dir = Path(out_dir)
    digests = {}
    plots = {"criteria": _criteria_plot(evaluation.criteria)}
    for figure in evaluation.figures:
        values = [r["metrics"].get(figure.metric) for r in records]
        plots[figure.name] = _figure_plot(figure, values)
    for name, png in plots.items():
        relative = f"{PLOTS_DIR}/{name}.png"
        atomic_write_bytes(out_dir / relative, png)
        digests[relative] = sha256_bytes(png)
    text = _markdown(spec, evaluation, subjects, run, sorted(digests))
    atomic_write_text(out_dir / REPORT_NAME, text)
    digests[REPORT_NAME] = sha256_bytes(text.encode())
    return digests


def _markdown(
    spec: BenchmarkSpec,
    evaluation: Evaluation,
    subjects: dict[str, str],
    run: dict[str, Any],
    plots: list[str],
) -> str:
    lines = [
        f"# Certificate report: {spec.name}",
        "",
        f"**Verdict: {evaluation.verdict}**",
        "",
        f"- cell: `{spec.env_id}`, episodes: {spec.episodes}, α = {spec.alpha} "
        f"(α/m = {spec.alpha_per_criterion:.4g} per criterion, Bonferroni over "
        f"{len(spec.criteria)})",
        f"- benchmark spec sha256: `{spec_digest(spec)}`",
        *(f"- `{name}` sha256: `{digest}`" for name, digest in subjects.items()),
        f"- run: {run['started_at']} → {run['finished_at']}, {run['workers']} worker(s), "
        f"{run['episodes_wall_time_s']} s",
        "",
        "## Pass/fail criteria",
        "",
        "A criterion passes when the one-sided Clopper–Pearson lower bound at α/m is ≥ p0.",
        "",
        "| criterion | event | k / n | rate | CP lower | Wilson lower | p0 | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *(_criterion_row(c) for c in evaluation.criteria),
        "",
        f"Action gate: {evaluation.actions.episodes_with_invalid_actions} of "
        f"{evaluation.actions.n} episodes had an action outside the bundle's bounds "
        f"({evaluation.actions.invalid_steps} steps): {evaluation.actions.verdict}.",
        "",
        "## Continuous figures",
        "",
        f"Percentile bootstrap, {spec.bootstrap.resamples} resamples, seed "
        f"{spec.bootstrap.seed}, {spec.bootstrap.confidence:.0%} intervals.",
        "",
        "| figure | unit | n | mean | IQM | median | std | statistic | CI | limit | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(_figure_row(f) for f in evaluation.figures),
        "",
        "## Plots",
        "",
        *(f"![{Path(p).stem}]({p})" for p in plots),
        "",
    ]
    return "\n".join(lines)


def _criterion_row(c: CriterionResult) -> str:
    return (
        f"| {c.name} | `{c.metric} {c.op} {c.value:g}` | {c.k} / {c.n} | {c.k / c.n:.3f} | "
        f"{c.clopper_pearson_lower:.4f} | {c.wilson_lower:.4f} | {c.p0:g} | {c.verdict} |"
    )


def _figure_row(f: FigureResult) -> str:
    ci = f"[{_num(f.ci_low)}, {_num(f.ci_high)}]"
    limit = "—" if f.limit is None else f"{f.op} {f.limit:g}"
    return (
        f"| {f.name} | {f.unit} | {f.n} (+{f.n_missing} missing) | {_num(f.mean)} | "
        f"{_num(f.iqm)} | {_num(f.median)} | {_num(f.std)} | {f.statistic} | {ci} | {limit} | "
        f"{f.verdict} |"
    )


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _criteria_plot(criteria: list[CriterionResult]) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 1.4 + 0.5 * len(criteria)))
    rows = np.arange(len(criteria))
    ax.barh(rows, [c.k / c.n for c in criteria], color="#9ecae1", label="observed rate k/n")
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
    return _png(fig)


def _figure_plot(figure: FigureResult, values: list[float | None]) -> bytes:
    plt = _pyplot()
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
    ax.set_xlabel(f"{figure.metric} ({figure.unit})" if figure.unit else figure.metric)
    ax.set_ylabel("episodes")
    ax.set_title(f"{figure.name}: {figure.verdict}")
    ax.legend(fontsize=7)
    return _png(fig)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    _pyplot().close(fig)
    return buffer.getvalue()
