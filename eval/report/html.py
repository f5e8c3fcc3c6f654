"""``report.html``: the buyer's view of a certificate, one self-contained page.

It shows the verdict, every criterion with its bound against p0, the robustness heat map per
operating condition, the distributions of the continuous figures against the spec's limits,
rollout stills, and the digests with the commands that verify them. The page is a pure function
of the signed predicate, the subjects, the episode log and the signed image files, so
``robocell report`` rebuilds it byte for byte from a verified certificate.
"""

from __future__ import annotations

import re
from typing import Any

from robocell.eval.report.heatmap import robustness_section
from robocell.eval.report.markdown import describe_run
from robocell.eval.report.page import esc, image, number, page, table, verdict
from robocell.eval.report.stills import STILLS_DIR
from robocell.eval.robustness import is_success
from robocell.eval.spec import BenchmarkSpec, parse_spec

HTML_NAME = "report.html"
STILL_PATTERN = re.compile(rf"^{STILLS_DIR}/episode_(\d+)_(first|last)\.png$")
CRITERIA_HEADERS = ("criterion", "event", "k / n", "rate", "CP lower", "Wilson lower", "p0")
CRITERIA_HEADERS += ("rate · bound · p0", "verdict")


def render_html(
    predicate: dict[str, Any],
    subjects: dict[str, str],
    episodes: list[dict[str, Any]],
    images: dict[str, bytes],
) -> str:
    """The page; ``images`` maps the signed plot and still paths to their PNG bytes."""
    spec = parse_spec(predicate["benchmark"]["spec"])
    sections = [
        _criteria(spec, predicate),
        robustness_section(
            spec, predicate.get("robustness", []), predicate.get("bucket_criteria", [])
        ),
        _distributions(predicate["figures"], images),
        _stills(spec, episodes, images),
        _verification(predicate, subjects),
    ]
    kind = "Production certificate" if "telemetry" in predicate else "Certificate"
    title = f"{kind} report: {spec.name} — {predicate['verdict']}"
    return page(title, predicate["verdict"], _header(spec, predicate), sections)


def _header(spec: BenchmarkSpec, predicate: dict[str, Any]) -> str:
    criteria = [*predicate["criteria"], *predicate.get("bucket_criteria", [])]
    limited = [f for f in predicate["figures"] if f["limit"] is not None]
    passed = sum(c["verdict"] == "PASS" for c in criteria)
    within = sum(f["verdict"] == "PASS" for f in limited)
    run = predicate["run"]
    return (
        f'<div class="badge">{esc(predicate["verdict"])}</div>'
        f"<h1>Certificate report: {esc(spec.name)}</h1>"
        f"<p>{esc(spec.description)}</p>"
        f"<p><strong>{passed} of {len(criteria)} criteria pass; {within} of {len(limited)} "
        "limited figures lie within their limits.</strong></p>"
        '<dl class="facts">'
        f"<dt>cell</dt><dd><code>{esc(spec.env_id)}</code></dd>"
        f"<dt>{'production parts' if 'telemetry' in predicate else 'episodes'}</dt>"
        f"<dd>{spec.episodes}, every one counted</dd>"
        f"<dt>error level</dt><dd>α = {spec.alpha:g}, Bonferroni over m = {spec.tests}: "
        f"α/m = {spec.alpha_per_criterion:.4g} per criterion</dd>"
        f"<dt>certified</dt><dd>{esc(run['finished_at'])} by robocell "
        f"{esc(predicate['certifier']['version'])}</dd>"
        "</dl>"
    )


def _criteria(spec: BenchmarkSpec, predicate: dict[str, Any]) -> str:
    descriptions = {c.name: c.description for c in spec.criteria}
    rows = [_criterion_row(c) for c in predicate["criteria"]]
    rows += [_criterion_row(c) for c in predicate.get("bucket_criteria", [])]
    notes = "".join(
        f"<li><strong>{esc(name)}</strong>: {esc(text)}</li>"
        for name, text in descriptions.items()
        if text
    )
    return (
        '<section id="criteria"><h2>Pass/fail criteria</h2>'
        '<p class="muted">A criterion passes when the one-sided Clopper–Pearson lower bound on '
        "its probability, at α/m, is at least the required p0. In the bars: the observed rate "
        "(light blue), the bound (dark blue dot) and p0 (red line). A bucket criterion, "
        "<code>criterion[condition=bucket]</code>, counts that bucket's episodes alone.</p>"
        f"{table(CRITERIA_HEADERS, rows, numeric={2, 3, 4, 5, 6})}"
        f"<p>{_action_gate(predicate.get('actions'))}</p>"
        f'<ul class="muted">{notes}</ul></section>'
    )


def _action_gate(actions: dict[str, Any] | None) -> str:
    if actions is None:
        return ""
    return (
        f"Action gate: {actions['episodes_with_invalid_actions']} of {actions['n']} episodes had "
        f"an action outside the bundle's bounds ({actions['invalid_steps']} steps): "
        f"<strong>{esc(actions['verdict'])}</strong>. Input guard: "
        f"{actions.get('episodes_with_faults', 0)} episodes with a faulted observation "
        f"({actions.get('faulted_steps', 0)} steps, each such episode failed), "
        f"{actions.get('clipped_observations', 0)} observations clipped to the manifest's ranges."
    )


def _criterion_row(c: dict[str, Any]) -> list[str]:
    rate = c["k"] / c["n"] if c["n"] else 0.0
    return [
        esc(c["name"]),
        f"<code>{esc(c['metric'])} {esc(c['op'])} {c['value']:g}</code>",
        f"{c['k']} / {c['n']}",
        f"{rate:.3f}",
        f"{c['clopper_pearson_lower']:.4f}",
        f"{c['wilson_lower']:.4f}",
        f"{c['p0']:g}",
        _bound_svg(rate, c["clopper_pearson_lower"], c["p0"]),
        verdict(c["verdict"]),
    ]


def _bound_svg(rate: float, bound: float, p0: float) -> str:
    def x(p: float) -> str:
        return f"{10 + 200 * p:.1f}"

    return (
        '<svg width="220" height="20" viewBox="0 0 220 20" role="img" '
        f'aria-label="rate {rate:.3f}, bound {bound:.3f}, p0 {p0:g}">'
        '<rect x="10" y="6" width="200" height="8" fill="#eceff3"/>'
        f'<rect x="10" y="6" width="{200 * rate:.1f}" height="8" fill="#9ecae1"/>'
        f'<line x1="{x(p0)}" y1="1" x2="{x(p0)}" y2="19" stroke="#cb181d" stroke-width="2"/>'
        f'<circle cx="{x(bound)}" cy="10" r="4" fill="#08519c"/></svg>'
    )


def _distributions(figures: list[dict[str, Any]], images: dict[str, bytes]) -> str:
    cards = []
    for f in figures:
        png = images.get(f"plots/{f['name']}.png")
        unit = f" {f['unit']}" if f["unit"] else ""
        limit = "no limit (reported only)"
        if f["limit"] is not None:
            limit = f"limit: {f['statistic']} {f['op']} {number(f['limit'])}{unit}"
        caption = (
            f"<strong>{esc(f['name'])}</strong> ({esc(f['metric'])}): {esc(f['statistic'])} "
            f"{number(f['value'])}{esc(unit)}, {f['confidence']:.0%} CI "
            f"[{number(f['ci_low'])}, {number(f['ci_high'])}]; {esc(limit)} → "
            f"{verdict(f['verdict'])}; n = {f['n']}, missing {f['n_missing']}"
        )
        picture = image(png, f"distribution of {f['metric']}") if png else ""
        cards.append(f"<figure>{picture}<figcaption>{caption}</figcaption></figure>")
    return (
        '<section id="distributions"><h2>Distributions against the limits</h2>'
        '<p class="muted">Per-episode values (grey), the statistic and its percentile-bootstrap '
        "interval (blue), the spec's limit (red) and any per-episode criterion threshold on "
        f'the same metric (orange, dotted).</p><div class="figures">{"".join(cards)}</div>'
        "</section>"
    )


def _stills(spec: BenchmarkSpec, episodes: list[dict[str, Any]], images: dict[str, bytes]) -> str:
    frames: dict[int, dict[str, bytes]] = {}
    for name, png in sorted(images.items()):
        match = STILL_PATTERN.match(name)
        if match:
            frames.setdefault(int(match[1]), {})[match[2]] = png
    by_index = {record["index"]: record for record in episodes}
    cards = [_still_card(spec, by_index[i], shots) for i, shots in sorted(frames.items())]
    body = "".join(cards) or (
        '<p class="muted">No stills in this certificate (certified with --stills 0).</p>'
    )
    return (
        '<section id="stills"><h2>Rollout stills</h2><p class="muted">Certified episodes '
        "replayed with the bundle: the first and the last frame.</p>"
        f'<div class="stills">{body}</div></section>'
    )


def _still_card(spec: BenchmarkSpec, record: dict[str, Any], shots: dict[str, bytes]) -> str:
    metrics = record["metrics"]
    outcome = "success" if is_success(metrics) else "failure"
    facts = [outcome, f"energy {number(metrics.get('energy_j'))} J"]
    facts.append(f"cycle time {number(metrics.get('cycle_time_s'))} s")
    for condition in spec.conditions:
        value = metrics.get(condition.metric)
        bucket = next((b.name for b in condition.buckets if b.contains(value)), "no bucket")
        unit = f" {condition.unit}" if condition.unit else ""
        facts.append(f"{condition.name}: {bucket} ({number(value)}{unit})")
    pictures = "".join(
        image(shots[moment], f"episode {record['index']}, {moment} frame", 240)
        for moment in ("first", "last")
        if moment in shots
    )
    return (
        f"<figure>{pictures}<figcaption><strong>Episode {record['index']}</strong> "
        f"(seed {record['seed']}): {esc('; '.join(facts))}</figcaption></figure>"
    )


def _verification(predicate: dict[str, Any], subjects: dict[str, str]) -> str:
    rows = [[f"<code>{esc(name)}</code> (subject)", _digest(d)] for name, d in subjects.items()]
    rows.append(["benchmark spec", _digest(predicate["benchmark"]["spec_digest"])])
    telemetry = predicate.get("telemetry")
    if telemetry is None:
        seeds = predicate["seeds"]
        rows += [
            ["seed commitment", _digest(seeds["commitment"])],
            ["revealed master seed", _digest(seeds["master_seed"])],
        ]
    else:
        rows += [
            [f"telemetry head (batch {telemetry['head']['batches']})",
             _digest(telemetry["head"]["batch_hash"])],
            ["cell key fingerprint", _digest(telemetry["cell_key_fingerprint"])],
        ]  # fmt: skip
    rows += [
        [f"episode log <code>{esc(predicate['episodes']['log'])}</code>",
         _digest(predicate["episodes"]["log_sha256"])],
        ["certifier key fingerprint", _digest(predicate["certifier"]["key_fingerprint"])],
    ]  # fmt: skip
    return (
        '<section id="verification"><h2>What was certified, and how to check it</h2>'
        f"{table(('item', 'sha256'), rows, numeric=set())}"
        f'<p class="muted">{esc(describe_run(predicate))}. This page '
        "is signed too: its sha256 is listed under <code>predicate.report</code> in "
        "<code>certificate.json</code>.</p>"
        f"{_how_to_check(telemetry is not None)}</section>"
    )


def _how_to_check(production: bool) -> str:
    if production:
        return (
            "<pre>robocell verify CERT_DIR/certificate.json --pubkey certifier.pub "
            "--telemetry TELEMETRY_URL --bundle BUNDLE_DIR</pre>"
            '<p class="muted">It checks the signature, walks the cell\'s telemetry chain with '
            "the recorded cell key, checks that the certified head is still in it, and "
            "recomputes every statistic from the telemetry's rows.</p>"
        )
    return (
        "<pre>robocell verify CERT_DIR/certificate.json --pubkey certifier.pub "
        "--bundle BUNDLE_DIR\n"
        "robocell verify CERT_DIR/certificate.json --pubkey certifier.pub "
        "--bundle BUNDLE_DIR --rerun\n"
        "robocell report CERT_DIR --pubkey certifier.pub -o rebuilt.html</pre>"
        '<p class="muted">The first checks the signature, every digest and recomputes every '
        "statistic from the episode log; <code>--rerun</code> replays every episode with the "
        "bundle; <code>robocell report</code> rebuilds this page from a verified certificate."
        "</p>"
    )


def _digest(value: str) -> str:
    return f'<span class="digest">{esc(value)}</span>'
