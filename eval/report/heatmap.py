"""The robustness section of ``report.html``: one heat-mapped table per operating condition.

Each row is a bucket of the condition: its episodes, successes, the success rate coloured on a
red–yellow–green scale with its Wilson interval, the mean energy per episode coloured from the
condition's least to its most energy-hungry bucket, and the bucket's own criteria.
"""

from __future__ import annotations

from typing import Any

from robocell.eval.report.page import (
    ENERGY_STOPS,
    SUCCESS_STOPS,
    colour,
    esc,
    gradient,
    number,
    table,
)
from robocell.eval.spec import BenchmarkSpec

HEADERS = (
    "bucket",
    "rule",
    "episodes",
    "successes",
    "success rate",
    "Wilson interval",
    "mean energy (J)",
    "bucket criteria",
)


def robustness_section(
    spec: BenchmarkSpec, robustness: list[dict[str, Any]], bucket_criteria: list[dict[str, Any]]
) -> str:
    """The section: a legend, then a table per condition (or a note that the spec has none)."""
    parts = ['<section id="robustness">', "<h2>Robustness per operating condition</h2>"]
    if not robustness:
        parts.append(
            '<p class="muted">This benchmark spec names no operating conditions, so there is '
            "no robustness table.</p></section>"
        )
        return "\n".join(parts)
    descriptions = {c.name: c.description for c in spec.conditions}
    parts.append(_legend(robustness[0]["confidence"]))
    for condition in robustness:
        parts.append(
            _condition(condition, descriptions.get(condition["name"], ""), bucket_criteria)
        )
    parts.append("</section>")
    return "\n".join(parts)


def _legend(confidence: float) -> str:
    return (
        '<p class="muted">Success rate '
        f'<span class="legend" style="background: {gradient(SUCCESS_STOPS)}"></span> '
        f"0 → 0.8 → 1, with its two-sided {confidence:.0%} Wilson interval. Mean energy per "
        f'episode <span class="legend" style="background: {gradient(ENERGY_STOPS)}"></span> '
        "least → most within the condition.</p>"
    )


def _condition(condition: dict[str, Any], description: str, criteria: list[dict]) -> str:
    unit = f" ({esc(condition['unit'])})" if condition["unit"] else ""
    energies = [b["energy_mean_j"] for b in condition["buckets"] if b["energy_mean_j"] is not None]
    span = (min(energies), max(energies)) if energies else (0.0, 0.0)
    rows = [_row(condition["name"], b, span, criteria) for b in condition["buckets"]]
    note = f'<p class="muted">{esc(description)}</p>' if description else ""
    outside = condition["outside"]
    tail = f'<p class="muted">{outside} episode(s) fell into no bucket.</p>' if outside else ""
    return (
        f"<h3>{esc(condition['name'])}: <code>{esc(condition['metric'])}</code>{unit}</h3>"
        f"{note}{table(HEADERS, rows, numeric={2, 3})}{tail}"
    )


def _row(
    condition: str, bucket: dict[str, Any], span: tuple[float, float], criteria: list[dict]
) -> list[str]:
    rate, energy = bucket["success_rate"], bucket["energy_mean_j"]
    return [
        esc(bucket["name"]),
        f"<code>{esc(bucket['rule'])}</code>",
        str(bucket["n"]),
        str(bucket["successes"]),
        _heat(rate, SUCCESS_STOPS, "—" if rate is None else f"{rate:.0%}"),
        f"[{bucket['wilson_low']:.3f}, {bucket['wilson_high']:.3f}]",
        _heat(_fraction(energy, span), ENERGY_STOPS, number(energy)),
        _chips(condition, bucket["name"], criteria),
    ]


def _heat(fraction: float | None, stops: Any, text: str) -> str:
    if fraction is None:
        return f'<td class="heat">{esc(text)}</td>'
    return f'<td class="heat" style="background: {colour(fraction, stops)}">{esc(text)}</td>'


def _fraction(energy: float | None, span: tuple[float, float]) -> float | None:
    if energy is None:
        return None
    low, high = span
    return 0.0 if high <= low else (energy - low) / (high - low)


def _chips(condition: str, bucket: str, criteria: list[dict[str, Any]]) -> str:
    chips = [
        f'<span class="chip {esc(c["verdict"])}" title="Clopper–Pearson lower bound '
        f'{c["clopper_pearson_lower"]:.4f} at α/m = {c["alpha"]:.4g}">'
        f"{esc(c['metric'])} {esc(c['op'])} {c['value']:g} with p ≥ {c['p0']:g}: "
        f"{c['k']}/{c['n']}, {esc(c['verdict'])}</span>"
        for c in criteria
        if c["condition"] == condition and c["bucket"] == bucket
    ]
    return "".join(chips) or '<span class="muted">—</span>'
