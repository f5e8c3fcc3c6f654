"""Operating conditions: what each cell reports, the spec's buckets, the robustness table."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from certtools import conditioned_weld_spec, small_weld_spec

from robocell.envs import ENV_IDS
from robocell.envs.make import make_cell
from robocell.envs.weld.seam import SHAPES
from robocell.errors import RobocellError
from robocell.eval.decision import evaluate
from robocell.eval.spec import load_spec, parse_spec, spec_data, spec_digest
from robocell.eval.stats import clopper_pearson_lower, wilson_interval

WELD, PEG, VISION = "robocell/WeldSeam-v1", "robocell/PegInsert-v0", "robocell/VisionSort-v1"
MOTION = "robocell/MotionTransfer-v0"
PEG_V1 = "robocell/PegInsert-v1"  # the same cell and conditions as v0
# Each cell's condition metrics and their documented ranges (env docstrings, default kwargs).
CONDITIONS: dict[str, dict[str, tuple[float, float]]] = {
    WELD: {
        "seam_shape_index": (0.0, 2.0),
        "seam_length_mm": (120.0, 250.0),
        "calibration_error_mm": (0.0, 3.0 * math.sqrt(2.0)),
    },
    PEG: {"position_error_mm": (0.0, 4.0 * math.sqrt(2.0)), "clearance_mm": (0.5, 0.5)},
    VISION: {
        "parts": (3.0, 5.0),
        "defective_parts": (0.0, 5.0),
        "light_tilt_deg": (0.0, 35.0),
        "light_level": (0.8, 1.2),
        "colour_jitter": (0.0, 0.05),
    },
    MOTION: {"takt_s": (5.5, 9.0)},
}
CONDITIONS[PEG_V1] = CONDITIONS[PEG]
# Kwargs that pin the randomisation, and the conditions the cell must then report.
PINNED: dict[str, tuple[dict[str, Any], dict[str, float]]] = {
    WELD: (
        {"shapes": ["straight"], "seam_length_mm": [150.0, 150.0], "calibration_error_mm": 0.0},
        {"seam_shape_index": 0.0, "seam_length_mm": 150.0, "calibration_error_mm": 0.0},
    ),
    PEG: (
        {"position_error_mm": 0.0, "clearance_mm": 0.3},
        {"position_error_mm": 0.0, "clearance_mm": 0.3},
    ),
    VISION: (
        {"parts": [4, 4], "light_tilt_deg": 0.0, "light_level_jitter": 0.0, "colour_jitter": 0.0},
        {"parts": 4.0, "light_tilt_deg": 0.0, "light_level": 1.0, "colour_jitter": 0.0},
    ),
    MOTION: ({"takt_s": [7.0, 7.0]}, {"takt_s": 7.0}),
}
PINNED[PEG_V1] = PINNED[PEG]


# ---------------------------------------------------------------- the cells
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_cell_reports_its_conditions_in_range(env_id: str) -> None:
    assert env_id in CONDITIONS, f"list {env_id}'s condition metrics in CONDITIONS"
    env = make_cell(env_id)
    env.action_space.seed(0)
    seen: dict[str, set[float]] = {name: set() for name in CONDITIONS[env_id]}
    for seed in range(4):
        env.reset(seed=seed)
        while True:
            _, _, terminated, truncated, info = env.step(env.action_space.sample())
            if terminated or truncated:
                break
        metrics = info["episode_metrics"]
        for name, (low, high) in CONDITIONS[env_id].items():
            assert low - 1e-9 <= metrics[name] <= high + 1e-9, (name, metrics[name])
            seen[name].add(metrics[name])
    env.close()
    varying = [name for name, values in seen.items() if len(values) > 1]
    assert len(varying) >= len(seen) - 1, seen  # they are drawn per episode (clearance is not)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_conditions_follow_the_kwargs(env_id: str) -> None:
    kwargs, expected = PINNED[env_id]
    env = make_cell(env_id, kwargs)
    env.reset(seed=3)
    figures = env.unwrapped.task.episode_figures()
    env.close()
    for name, value in expected.items():
        assert figures[name] == pytest.approx(value, abs=1e-9), name


def test_seam_shape_index_names_the_drawn_shape() -> None:
    env = make_cell(WELD)
    for seed in range(6):
        env.reset(seed=seed)
        task = env.unwrapped.task
        assert task.episode_figures()["seam_shape_index"] == SHAPES.index(task.seam_shape)
    env.close()


# ---------------------------------------------------------------- the spec
def test_conditions_count_in_the_bonferroni_m() -> None:
    spec = parse_spec(conditioned_weld_spec(12))
    assert spec.tests == 3 and spec.alpha_per_criterion == pytest.approx(0.05 / 3)
    assert [c.name for c in spec.conditions] == ["seam_shape", "calibration_error", "seam_length"]


def test_a_spec_without_conditions_keeps_its_data_and_digest() -> None:
    data = small_weld_spec(12)
    spec = parse_spec(data)
    assert "conditions" not in spec_data(spec)
    with_empty = parse_spec({**data, "conditions": []})
    assert spec_digest(with_empty) == spec_digest(spec)
    assert spec_digest(parse_spec(conditioned_weld_spec(12))) != spec_digest(spec)


@pytest.mark.parametrize("name", ["weld", "peg", "vision"])
def test_packaged_specs_name_conditions_their_cell_reports(name: str) -> None:
    spec = load_spec(name)
    assert spec.conditions, f"{name}: no robustness buckets"
    assert {c.metric for c in spec.conditions} <= set(CONDITIONS[spec.env_id])


def _bucket(data: dict, condition: int = 0, bucket: int = 0) -> dict:
    return data["conditions"][condition]["buckets"][bucket]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: _bucket(d).update(colour=1), "conditions[0].buckets[0].colour: unknown key"),
        (lambda d: d["conditions"][0].pop("metric"), "conditions[0].metric: required key"),
        (lambda d: _bucket(d).update(low=0.0), "conditions[0].buckets[0]: give either equals"),
        (lambda d: _bucket(d).pop("equals"), "conditions[0].buckets[0]: give equals, or low"),
        (lambda d: _bucket(d, 2).update(high=50.0), "buckets[0]: low (100) must be below high"),
        (lambda d: _bucket(d, 1, 1).update(low=1.0), "'under 2 mm' and '2 mm and over' overlap"),
        (lambda d: _bucket(d, 0, 1).update(equals=0), "'straight' and 'arc' overlap"),
        (lambda d: _bucket(d, 0, 1).update(name="straight"), "duplicate name 'straight'"),
        (lambda d: d["conditions"][1].update(name="seam_shape"), "duplicate name 'seam_shape'"),
        (lambda d: d["conditions"][0].update(buckets=[]), "at least one bucket"),
        (lambda d: _bucket(d).update(equals=math.nan), "'.nan' is not a finite number"),
        (
            lambda d: _bucket(d, 2)["criteria"][0].update(criterion="speed"),
            "criteria[0].criterion: unknown criterion 'speed'",
        ),
        (lambda d: _bucket(d, 2)["criteria"][0].update(p0=1.0), "criteria[0].p0: must be in"),
        (
            lambda d: _bucket(d, 2)["criteria"][0].update(p0=0.9),
            "can never pass criterion 'success in seam_length=any'",
        ),
    ],
)
def test_bad_conditions_are_refused_naming_the_field(tmp_path, edit, message: str) -> None:
    data = conditioned_weld_spec(12)
    edit(data)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RobocellError) as error:
        load_spec(path)
    assert message in str(error.value)


# ---------------------------------------------------------------- the table and the decision
def _episode(shape: float | None, success: float, energy_j: float, error_mm: float = 1.0) -> dict:
    return {
        "success": success,
        "energy_j": energy_j,
        "seam_shape_index": shape,
        "calibration_error_mm": error_mm,
        "seam_length_mm": 150.0,
    }


def _episodes() -> list[dict]:
    # 12 episodes: 5 straight (all good), 4 arcs (one failure), 2 S-curves, 1 with no shape.
    straight = [_episode(0.0, 1.0, 100.0 + i) for i in range(5)]
    arcs = [_episode(1.0, float(i != 2), 200.0, error_mm=2.5) for i in range(4)]
    s_curves = [_episode(2.0, 1.0, 300.0), _episode(2.0, 1.0, math.nan)]
    return straight + arcs + s_curves + [_episode(None, 1.0, 50.0)]


def test_the_robustness_table_counts_each_bucket() -> None:
    spec = parse_spec(conditioned_weld_spec(12))
    table = {c.name: c for c in evaluate(spec, _episodes()).robustness}
    shape = table["seam_shape"]
    assert shape.outside == 1 and shape.confidence == 0.95
    rows = {b.name: b for b in shape.buckets}
    assert [(b.n, b.successes) for b in rows.values()] == [(5, 5), (4, 3), (2, 2)]
    assert rows["arc"].success_rate == 0.75 and rows["arc"].rule == "== 1"
    assert (rows["arc"].wilson_low, rows["arc"].wilson_high) == wilson_interval(3, 4, 0.95)
    assert rows["straight"].energy_mean_j == pytest.approx(102.0)
    assert rows["s_curve"].energy_mean_j == 300.0  # the missing energy does not count
    error = {b.name: b.n for b in table["calibration_error"].buckets}
    assert error == {"under 2 mm": 8, "2 mm and over": 4}


def test_a_bucket_criterion_is_tested_on_its_bucket_alone() -> None:
    data = conditioned_weld_spec(12)
    _bucket(data, 0, 1)["criteria"] = [{"criterion": "success", "p0": 0.3}]  # the arcs
    spec = parse_spec(data)
    assert spec.tests == 4
    result = evaluate(spec, _episodes())
    arcs = next(c for c in result.bucket_criteria if c.bucket == "arc")
    assert (arcs.name, arcs.condition, arcs.n, arcs.k) == (
        "success[seam_shape=arc]",
        "seam_shape",
        4,
        3,
    )
    assert arcs.alpha == pytest.approx(0.05 / 4)
    assert arcs.clopper_pearson_lower == pytest.approx(clopper_pearson_lower(3, 4, 0.05 / 4))
    assert arcs.verdict == "FAIL"  # 3 of 4 cannot show p > 0.3 at 0.0125
    everything = next(c for c in result.bucket_criteria if c.bucket == "any")
    assert (everything.n, everything.k) == (12, 11)
    assert all(c.verdict == "PASS" for c in result.criteria)
    assert result.verdict == "FAILED"  # the arc bucket alone fails the certificate


def test_an_empty_bucket_fails_its_criterion() -> None:
    data = conditioned_weld_spec(12)
    _bucket(data, 0, 2)["criteria"] = [{"criterion": "success", "p0": 0.1}]
    episodes = [_episode(0.0, 1.0, 10.0) for _ in range(12)]  # no S-curve at all
    result = evaluate(parse_spec(data), episodes)
    empty = next(c for c in result.bucket_criteria if c.bucket == "s_curve")
    assert (empty.n, empty.k, empty.clopper_pearson_lower, empty.verdict) == (0, 0, 0.0, "FAIL")
    row = next(b for b in result.robustness[0].buckets if b.name == "s_curve")
    assert (row.success_rate, row.energy_mean_j, row.wilson_low, row.wilson_high) == (
        None,
        None,
        0.0,
        1.0,
    )


def test_wilson_interval_known_values() -> None:
    # k = 8, n = 10 at 95 %: the textbook Wilson score interval [0.4902, 0.9433].
    low, high = wilson_interval(8, 10, 0.95)
    assert (low, high) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))
    mirrored = wilson_interval(2, 10, 0.95)
    assert mirrored == (pytest.approx(1 - high), pytest.approx(1 - low))
    assert wilson_interval(0, 0, 0.95) == (0.0, 1.0)
