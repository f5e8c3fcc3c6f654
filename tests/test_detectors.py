"""The drift detectors: thresholds set on the warm-up give the asked false-alarm rate on
stationary streams, a real drift is caught within a few parts, and an alarm stands until a
calibration clears it."""

from __future__ import annotations

import numpy as np

from robocell.line.detectors import BernoulliCusum, CellDetectors, MeanCusum

STREAMS = ["success", "energy_j"]


def _part(rng: np.random.Generator, failure_rate: float, energy_mean: float) -> dict[str, float]:
    return {"success": float(rng.random() >= failure_rate),
            "energy_j": float(rng.normal(energy_mean, 20.0))}  # fmt: skip


def test_stationary_streams_alarm_about_as_rarely_as_asked() -> None:
    rng = np.random.default_rng(0)
    alarms = parts = 0
    for _ in range(10):
        detectors = CellDetectors(STREAMS, warmup_parts=200, false_alarm_parts=2000)
        for part in range(20_000):
            if detectors.update(part, _part(rng, 0.01, 1000.0)):
                alarms += 1
                detectors.restart()
        parts += 20_000 - 200
    # Asked 2000 parts between false alarms; the warm-up's estimates make it vary.
    assert 800 <= parts / max(alarms, 1) <= 20_000


def test_a_failing_cell_and_an_energy_step_are_caught_within_a_few_parts() -> None:
    rng = np.random.default_rng(1)
    detectors = CellDetectors(STREAMS, warmup_parts=150, false_alarm_parts=50_000)
    for part in range(150):
        assert detectors.update(part, _part(rng, 0.005, 1000.0)) == []
    caught = None
    for part in range(150, 250):
        alarms = detectors.update(part, _part(rng, 1.0, 1000.0))
        if alarms:
            caught = part
            break
    assert caught is not None and caught - 150 < 10
    energy = MeanCusum.from_reference("energy_j", rng.normal(1000.0, 20.0, 150), 50_000)
    delay = next(i for i in range(200) if energy.update(float(rng.normal(1060.0, 20.0)), i))
    assert delay < 15  # a 3-sigma step


def test_an_alarm_stands_until_restart() -> None:
    detectors = CellDetectors(["success"], warmup_parts=20, false_alarm_parts=1000)
    for part in range(20):
        detectors.update(part, {"success": 1.0})
    raised = [bool(detectors.update(part, {"success": 0.0})) for part in range(20, 40)]
    assert raised.count(True) == 1  # raised once, then it stands
    detectors.restart()
    assert any(detectors.update(part, {"success": 0.0}) for part in range(40, 60))


def test_the_bernoulli_threshold_grows_with_the_asked_run_length() -> None:
    thresholds = [BernoulliCusum.from_reference("s", [0.0] * 200, arl).threshold
                  for arl in (500, 5000, 50_000)]  # fmt: skip
    assert thresholds == sorted(thresholds) and thresholds[0] < thresholds[-1]


def test_after_a_calibration_energy_takes_a_new_reference_and_success_keeps_its_own() -> None:
    detectors = CellDetectors(STREAMS, warmup_parts=20, false_alarm_parts=1000)
    for part in range(20):
        detectors.update(part, {"success": 1.0, "energy_j": 1000.0 + part % 3})
    assert set(detectors.thresholds()) == set(STREAMS)
    detectors.restart()
    assert set(detectors.thresholds()) == {"success"}
    for part in range(20, 40):  # the calibrated cell uses more energy: its new level
        assert detectors.update(part, {"success": 1.0, "energy_j": 1100.0 + part % 3}) == []
    assert detectors.detectors["energy_j"].mean > 1099.0
