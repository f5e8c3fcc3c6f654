"""``robocell line report``: one self-contained HTML page of what a line did.

Read from the telemetry store alone (every chain verified first, so the page shows only
what the signatures vouch for): per cell, the KPIs over parts (success over a rolling
window, energy per part, cycle time), the drift alarms and calibrations as marks on those
curves, the events table and which bundle ran when. The page holds inline PNGs only, under
the same Content-Security-Policy as the certificate's report.html.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robocell.eval.report.page import esc, image, number, page, table
from robocell.eval.report.plots import figure_png, pyplot
from robocell.line.runtime import window_kpis

ROLLING_PARTS = 50


def render_line_report(
    rows: list[dict[str, Any]], events: list[dict[str, Any]], chains: list[Any]
) -> str:
    """The page for the rows and events of the verified ``chains``."""
    cells = sorted({(r["line"], r["cell"]) for r in rows} | {(c.line, c.cell) for c in chains})
    sections = [_chains(chains)]
    for line, cell in cells:
        cell_rows = [r for r in rows if r["line"] == line and r["cell"] == cell]
        cell_events = [e for e in events if e.get("line") == line and e["cell"] == cell]
        sections.append(_cell(line, cell, cell_rows, cell_events))
    header = f"<h1>Line report</h1><p>{len(rows)} parts on {len(cells)} cell(s)</p>"
    word = "PASS" if all(c.ok for c in chains) else "FAIL"
    return page("robocell line report", word, header, sections)


def _chains(chains: list[Any]) -> str:
    body = [
        [esc(f"{c.line}/{c.cell}"), str(c.batches), str(c.rows),
         "holds" if c.ok else esc(c.problem)]
        for c in chains
    ]  # fmt: skip
    return "<h2>Telemetry chains</h2>" + table(
        ["chain", "batches", "rows", "signature and hash chain"], body, {1, 2}
    )


def _cell(line: str, cell: str, rows: list[dict[str, Any]], events: list[dict[str, Any]]) -> str:
    kpis = window_kpis(rows)
    summary = table(
        ["parts", "success", "CP lower 95 %", "energy per part (J)", "CO2e per part (g)",
         "cycle time (s)"],
        [[str(kpis["parts"]), number(kpis.get("success_rate")),
          number(kpis.get("success_cp_lower")), number(kpis.get("energy_j_per_part")),
          number(kpis.get("co2e_g_per_part")), number(kpis.get("cycle_time_s"))]],
        {0, 1, 2, 3, 4, 5},
    ) if rows else "<p>no parts recorded</p>"  # fmt: skip
    plot = image(_plot(rows, events), f"KPIs of {cell} over parts", 900) if rows else ""
    event_rows = [[str(e["part"]), esc(e["type"]), esc(_describe(e))] for e in events]
    return (
        f"<h2>{esc(line)} / {esc(cell)}</h2>{summary}{plot}<h3>Events</h3>"
        + table(["part", "event", "detail"], event_rows, {0})
        + "<h3>Bundles</h3>"
        + table(
            ["bundle sha256", "parts", "first part", "last part", "success", "J/part"],
            _bundles(rows),
            {1, 2, 3, 4, 5},
        )
    )


#: Marks of the canary's steps on the KPI curves.
_LEARNING_COLOURS = {
    "learning": "tab:brown",
    "twin": "tab:cyan",
    "canary": "tab:orange",
    "promotion": "tab:purple",
    "rollback": "black",
}


def _describe(event: dict[str, Any]) -> str:
    data = event.get("data", {})
    if event["type"] == "drift_alarm":
        statistic, threshold = data.get("statistic", 0.0), data.get("threshold", 0.0)
        return (f"{data.get('stream')} {data.get('direction')}: statistic {statistic:.2f} "
                f"> threshold {threshold:.2f}")  # fmt: skip
    if event["type"] == "calibration":
        return (f"{data.get('method')}, version {data.get('version')}: error before "
                f"{_figures(data.get('error_before'))}, after {_figures(data.get('error_after'))}; "
                f"{data.get('duration_s', 0):.1f} s, {data.get('energy_j', 0):.0f} J")  # fmt: skip
    if event["type"] == "twin" and "value" in data:
        first, last = data.get("parts", [0, 0])
        return (f"{data.get('parameter')} = {data['value']:.4g} (truth {data.get('truth', 0):.4g}, "
                f"error {data.get('error', 0):+.3g}) from mean {data.get('figure')} "
                f"{data.get('observed', 0):.4g} over parts {first}-{last}; "
                f"{data.get('episodes')} twin episodes, {data.get('wall_s', 0):.0f} s")  # fmt: skip
    return ", ".join(f"{k}={v}" for k, v in sorted(data.items()))


def _figures(values: Any) -> str:
    if not isinstance(values, dict):
        return str(values)
    return ", ".join(f"{name} {value:.3g}" for name, value in sorted(values.items()))


def _bundles(rows: list[dict[str, Any]]) -> list[list[str]]:
    """Each bundle that ran, in order of its first part: how many parts, where, how well (a
    canary's parts interleave with the champion's)."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        runs.setdefault(row["bundle_sha256"], []).append(row)
    return [
        [f"<code>{esc(digest)}</code>", str(len(ran)), str(ran[0]["part"]), str(ran[-1]["part"]),
         f"{np.mean([r['success'] for r in ran]):.3f}",
         f"{np.mean([r['energy_j'] for r in ran]):.0f}"]
        for digest, ran in runs.items()
    ]  # fmt: skip


def _rolling(values: np.ndarray) -> np.ndarray:
    window = min(ROLLING_PARTS, len(values))
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def _plot(rows: list[dict[str, Any]], events: list[dict[str, Any]]) -> bytes:
    plt = pyplot()
    parts = np.array([r["part"] for r in rows])
    series = [
        ("success", np.array([float(r["success"]) for r in rows]), True),
        (
            "energy per part (J)",
            np.array([r["energy_j"] for r in rows]),
            False,
        ),
        ("cycle time (s)", np.array([r["cycle_time_s"] for r in rows]), False),
    ]
    fig, axes = plt.subplots(len(series), 1, figsize=(9, 6.5), sharex=True)
    for axis, (label, values, is_rate) in zip(axes, series, strict=True):
        smooth = _rolling(values)
        if is_rate:
            axis.set_ylim(-0.05, 1.05)
        else:
            axis.plot(parts, values, lw=0.4, color="0.75")
        axis.plot(parts[len(parts) - len(smooth) :], smooth, lw=1.2, color="tab:blue")
        axis.set_ylabel(label, fontsize=8)
        for event in events:
            if event["type"] == "drift_alarm":
                axis.axvline(event["part"], color="tab:red", lw=0.8, ls="--")
            elif event["type"] == "calibration":
                axis.axvline(event["part"], color="tab:green", lw=1.0)
            elif event["type"] in _LEARNING_COLOURS:
                axis.axvline(event["part"], color=_LEARNING_COLOURS[event["type"]], lw=1.2)
    axes[0].set_title(
        f"grey: each part, blue: mean of the last {ROLLING_PARTS} parts; "
        "red dashed: drift alarm, green: calibration; canary orange, promotion purple, "
        "rollback black",
        fontsize=8,
    )
    axes[-1].set_xlabel("part")
    return figure_png(fig)
