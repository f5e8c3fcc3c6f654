"""``robocell compare``: a policy against its cell's scripted controller on the same seeds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps
from test_cli import robocell

from robocell.errors import RobocellError
from robocell.train.compare import RESAMPLES, iqm_stratified, report_lines
from robocell.train.compare import compare as compare_episodes

ROOT = Path(__file__).resolve().parents[1]
PEG = str(ROOT / "models" / "peg")
WELD = str(ROOT / "models" / "weld")
FIRST_SEED = 2_000_000
EPISODES = 3
pytestmark = pytest.mark.xdist_group("compare")  # one worker plays the module's comparison once


@pytest.fixture(scope="module")
def peg(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    """The peg bundle compared on 3 seeds: the ``--json`` report and the ``-o`` file."""
    out = tmp_path_factory.mktemp("compare") / "cmp.json"
    result = robocell("compare", PEG, "--episodes", str(EPISODES), "--seed", str(FIRST_SEED),
                      "--json", "-o", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1]), json.loads(out.read_text())


def _column(episodes: list[dict[str, float]], key: str) -> np.ndarray:
    return np.array([m[key] for m in episodes])


def _energy_per_good_part(episodes: list[dict[str, float]]) -> float:
    return float(_column(episodes, "energy_j").sum() / _column(episodes, "success").sum())


def test_report_has_the_figures_and_intervals(peg: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, written = peg
    assert written["report"] == report
    assert report["env_id"] == "robocell/PegInsert-v0"
    assert report["seeds"] == [FIRST_SEED, FIRST_SEED + EPISODES - 1]
    policy = report["policies"][PEG]
    assert policy["kind"] == "bundle"
    for row in (report["scripted"], policy):
        for key in ("success_rate", "energy_per_good_part_j", "mean/energy_j",
                    "mean/cycle_time_s", "mean/peak_force_n"):  # fmt: skip
            assert key in row, key
    assert set(policy["vs_scripted"]) == {"energy_per_good_part_j", "energy_j", "cycle_time_s",
                                          "success"}  # fmt: skip
    for row in policy["vs_scripted"].values():
        assert row["ci_low"] <= row["value"] <= row["ci_high"]
    assert set(report["across_policies"]) == {"energy_j_saving", "cycle_time_s_saving", "success"}
    for row in report["across_policies"].values():
        assert row["ci_low"] <= row["iqm"] <= row["ci_high"]
    assert report["wall_s"] > 0 and report["cpu_s"] > 0


def test_paired_figures_come_from_the_episodes(peg: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, written = peg
    trained, scripted = written["episodes"]["policies"][PEG], written["episodes"]["scripted"]
    assert len(trained) == len(scripted) == EPISODES
    policy = report["policies"][PEG]
    assert policy["energy_per_good_part_j"] == pytest.approx(_energy_per_good_part(trained))
    assert report["scripted"]["energy_per_good_part_j"] == pytest.approx(
        _energy_per_good_part(scripted)
    )
    paired = policy["vs_scripted"]
    ratio = _energy_per_good_part(trained) / _energy_per_good_part(scripted)
    assert paired["energy_per_good_part_j"]["value"] == pytest.approx(ratio - 1)
    for key in ("energy_j", "cycle_time_s"):
        means = _column(trained, key).mean() / _column(scripted, key).mean()
        assert paired[key]["value"] == pytest.approx(means - 1)
    success = _column(trained, "success").mean() - _column(scripted, "success").mean()
    assert paired["success"]["value"] == pytest.approx(success)
    saving = 1 - _column(trained, "energy_j") / _column(scripted, "energy_j")
    assert report["across_policies"]["energy_j_saving"]["iqm"] == pytest.approx(
        sps.trim_mean(saving, 0.25)
    )


def test_scripted_figures_are_robocell_baselines(
    peg: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    result = robocell("baseline", "robocell/PegInsert-v0", "--episodes", str(EPISODES),
                      "--seed", str(FIRST_SEED), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    baseline = json.loads(result.stdout.strip().splitlines()[-1])
    scripted = peg[0]["scripted"]
    for key, value in baseline.items():
        if key not in ("env_id", "env_kwargs", "first_seed"):
            assert scripted[key] == value, key


def test_the_table_shows_each_paired_difference(peg: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report = peg[0]
    text = "\n".join(report_lines(report))
    assert PEG in text and "mean/peak_force_n" in text
    relative = report["policies"][PEG]["vs_scripted"]["energy_per_good_part_j"]["value"]
    assert f"{100 * relative:+.1f} %" in text


def test_policies_of_different_cells_are_refused() -> None:
    result = robocell("compare", PEG, WELD, "--episodes", "2")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "different cells" in errors[0]
    assert "robocell/PegInsert-v0" in errors[0] and "robocell/WeldSeam-v1" in errors[0]


@pytest.mark.parametrize("kind", ["empty directory", "missing", "file"])
def test_a_path_that_is_neither_run_nor_bundle_is_refused(kind: str, tmp_path: Path) -> None:
    path = {"empty directory": tmp_path, "missing": tmp_path / "nope",
            "file": ROOT / "models" / "peg" / "manifest.json"}[kind]  # fmt: skip
    result = robocell("compare", str(path), "--episodes", "2")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"robocell compare: error: {path}:" in result.stderr


def test_iqm_and_stratified_ci_match_rliable() -> None:
    library = pytest.importorskip("rliable.library")
    metrics = pytest.importorskip("rliable.metrics")
    scores = np.random.default_rng(7).normal(0.17, 0.02, (3, 50))  # runs × seeds, like the weld
    ours = iqm_stratified(scores)
    state = np.random.get_state()
    np.random.seed(0)  # rliable draws its resamples from numpy's global generator
    try:
        point, interval = library.get_interval_estimates(
            {"policy": scores}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=RESAMPLES
        )
    finally:
        np.random.set_state(state)
    assert ours["iqm"] == point["policy"][0]
    # Both intervals are percentiles of 9,999 resamples of the same stratified bootstrap, from
    # different random streams. A 2.5 % quantile from B = 9,999 draws has a Monte-Carlo
    # standard error of sqrt(q(1 − q) / B) / φ(1.96) ≈ 0.027 σ of the bootstrap distribution,
    # so the two estimates differ by ≈ 0.04 σ; 5 % of the width (3.92 σ) is ≈ 5 such errors.
    tolerance = 0.05 * (ours["ci_high"] - ours["ci_low"])
    assert ours["ci_low"] == pytest.approx(interval["policy"][0, 0], abs=tolerance)
    assert ours["ci_high"] == pytest.approx(interval["policy"][1, 0], abs=tolerance)


def test_the_plant_option_sets_every_contenders_plant_and_refuses_bad_names() -> None:
    plain, _ = compare_episodes([PEG], [2_000_000, 2_000_001])
    worn, _ = compare_episodes([PEG], [2_000_000, 2_000_001], plant={"joint_friction_nm": 0.3})
    assert worn["plant"] == {"joint_friction_nm": 0.3} and plain["plant"] == {}
    assert worn["policies"][PEG]["mean/energy_j"] > plain["policies"][PEG]["mean/energy_j"]
    assert worn["scripted"]["mean/energy_j"] > plain["scripted"]["mean/energy_j"]
    with pytest.raises(RobocellError, match="--plant"):
        compare_episodes([PEG], [2_000_000, 2_000_001], plant={"wear": 1.0})
    refused = robocell("compare", PEG, "--episodes", "2", "--plant", "joint_friction_nm")
    assert refused.returncode != 0 and "--plant 'joint_friction_nm'" in refused.stderr
    assert "Traceback" not in refused.stderr
