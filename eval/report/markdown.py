"""``report.md``: the certificate's numbers as Markdown tables, with links to the plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robocell.eval.decision import CriterionResult, Evaluation, FigureResult
from robocell.eval.robustness import ConditionResult
from robocell.eval.spec import BenchmarkSpec, spec_digest


def markdown_report(
    spec: BenchmarkSpec,
    evaluation: Evaluation,
    subjects: dict[str, str],
    predicate: dict[str, Any],
    images: list[str],
) -> str:
    """The Markdown report; ``images`` are the plots' and stills' relative paths."""
    lines = [
        f"# Certificate report: {spec.name}",
        "",
        f"**Verdict: {evaluation.verdict}**",
        "",
        f"- cell: `{spec.env_id}`, episodes: {spec.episodes}, α = {spec.alpha} "
        f"(α/m = {spec.alpha_per_criterion:.4g} per criterion, Bonferroni over "
        f"m = {spec.tests})",
        f"- benchmark spec sha256: `{spec_digest(spec)}`",
        *(f"- `{name}` sha256: `{digest}`" for name, digest in subjects.items()),
        f"- {describe_run(predicate)}",
        "- the same report as a web page: `report.html`",
        "",
        "## Pass/fail criteria",
        "",
        "A criterion passes when the one-sided Clopper–Pearson lower bound at α/m is ≥ p0; a",
        "bucket criterion, `criterion[condition=bucket]`, counts that bucket's episodes alone.",
        "",
        "| criterion | event | k / n | rate | CP lower | Wilson lower | p0 | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *(_criterion_row(c) for c in [*evaluation.criteria, *evaluation.bucket_criteria]),
        "",
        f"Action gate: {evaluation.actions.episodes_with_invalid_actions} of "
        f"{evaluation.actions.n} episodes had an action outside the bundle's bounds "
        f"({evaluation.actions.invalid_steps} steps): {evaluation.actions.verdict}. "
        f"Input guard: {evaluation.actions.episodes_with_faults} episodes with a faulted "
        f"observation ({evaluation.actions.faulted_steps} steps, each such episode failed), "
        f"{evaluation.actions.clipped_observations} observations clipped to the manifest's "
        "ranges.",
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
        *_robustness(evaluation.robustness),
        "## Plots",
        "",
        *(f"![{Path(p).stem}]({p})" for p in images),
        "",
    ]
    return "\n".join(lines)


def describe_run(predicate: dict[str, Any]) -> str:
    """One line on where the episodes came from: the certifier's run, or production parts."""
    run = predicate["run"]
    telemetry = predicate.get("telemetry")
    if telemetry is None:
        return (
            f"run: {run['started_at']} → {run['finished_at']}, {run['workers']} worker(s), "
            f"{run['episodes_wall_time_s']} s of episodes"
        )
    return (
        f"production parts {telemetry['first_part']}..{telemetry['last_part']} of cell "
        f"{telemetry['cell']} on line {telemetry['line']} (deployed at part "
        f"{telemetry['deployment_part']}), read from the signed telemetry "
        f"{run['started_at']} (head: batch {telemetry['head']['batches']})"
    )


def _robustness(conditions: list[ConditionResult]) -> list[str]:
    if not conditions:
        return []
    lines = ["## Robustness per operating condition", ""]
    for condition in conditions:
        unit = f" ({condition.unit})" if condition.unit else ""
        lines += [
            f"### {condition.name}: `{condition.metric}`{unit}",
            "",
            f"Success with its {condition.confidence:.0%} Wilson interval, mean energy per "
            f"episode; {condition.outside} episode(s) in no bucket.",
            "",
            "| bucket | rule | n | success | rate | Wilson interval | mean energy (J) |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            *(
                f"| {b.name} | `{b.rule}` | {b.n} | {b.successes} | {_num(b.success_rate)} | "
                f"[{b.wilson_low:.3f}, {b.wilson_high:.3f}] | {_num(b.energy_mean_j)} |"
                for b in condition.buckets
            ),
            "",
        ]
    return lines


def _criterion_row(c: CriterionResult) -> str:
    rate = f"{c.k / c.n:.3f}" if c.n else "—"
    return (
        f"| {c.name} | `{c.metric} {c.op} {c.value:g}` | {c.k} / {c.n} | {rate} | "
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
