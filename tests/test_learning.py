"""The learning cycle's trigger and the twin's update from production, in the line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from robocell.cli import main
from robocell.errors import RobocellError
from robocell.line.learning import LearningCycle
from robocell.line.linefile import LearningEntry, load_line
from robocell.line.telemetry import open_telemetry, verify_telemetry
from robocell.line.twin import TwinEstimate

PEG = "robocell/PegInsert-v0"


class _Events:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, kind: str, part: int, **data: Any) -> None:
        self.events.append({"type": kind, "part": part, "data": data})


def _cycle(**entry: Any) -> LearningCycle:
    return LearningCycle(LearningEntry(**entry), PEG, policy=None)


def test_an_alarm_calibration_cannot_clear_triggers_the_cycle_once() -> None:
    cycle, emit = _cycle(), _Events()
    assert cycle.calibrate(10, ["energy_j"], True, emit)  # the first calibrates
    assert cycle.calibrate(20, ["success"], True, emit)  # another stream: calibrate too
    assert not cycle.calibrate(30, ["energy_j"], True, emit)  # again: not cleared
    assert not cycle.calibrate(40, ["cycle_time_s"], True, emit)  # triggered: no more
    assert [e["type"] for e in emit.events] == ["learning"]
    assert emit.events[0]["part"] == 30
    assert emit.events[0]["data"] == {
        "reason": "not cleared by calibration",
        "streams": ["energy_j"],
        "calibrated_streams": ["energy_j", "success"],
    }


def test_a_cell_without_a_routine_triggers_at_its_first_alarm() -> None:
    cycle, emit = _cycle(), _Events()
    assert not cycle.calibrate(7, ["success", "energy_j"], False, emit)
    assert emit.events[0]["data"]["reason"] == "no calibration routine"


def test_replay_restores_the_cycle() -> None:
    events = [
        {"type": "drift_alarm", "part": 5, "data": {"stream": "energy_j"}},
        {"type": "calibration", "part": 5, "data": {}},
        {"type": "learning", "part": 9, "data": {}},
    ]
    cycle = _cycle()
    cycle.replay(events)
    assert cycle.calibrated_streams == {"energy_j"} and cycle.triggered_at == 9
    assert not cycle.twin_done
    cycle.replay([*events, {"type": "twin", "part": 20, "data": {}}])
    assert cycle.twin_done


def _rows(parts: range, friction: float) -> list[dict[str, Any]]:
    return [{"part": p, "energy_j": 100.0 + p, "quality": {},
             "conditions": {"joint_friction_nm": friction}} for p in parts]  # fmt: skip


def test_the_twin_is_matched_to_the_parts_after_the_trigger(monkeypatch) -> None:
    seen: dict[str, Any] = {}

    def estimate(env, policy, parameter, figure, observed, bounds, episodes, tolerance):
        seen.update(observed=observed, bounds=bounds, episodes=episodes, tolerance=tolerance)
        return TwinEstimate(parameter, 0.21, figure, observed, observed, [(0.0, 1.0)], 8)

    monkeypatch.setattr("robocell.line.learning.estimate_parameter", estimate)
    cycle, emit = _cycle(twin_parts=20, twin_episodes=8, bounds=[0.0, 0.4]), _Events()
    cycle._twin_env = object()  # never played: the estimate is replaced
    cycle.calibrate(10, ["success"], False, emit)
    rows = _rows(range(0, 30), 0.2)
    cycle.after_part(29, rows, emit)  # 19 parts after the trigger: not yet
    assert len(emit.events) == 1
    cycle.after_part(30, [*rows, *_rows(range(30, 31), 0.2)], emit)
    twin = emit.events[-1]
    assert twin["type"] == "twin" and twin["part"] == 30
    assert twin["data"]["parts"] == [11, 30]
    assert seen == {"observed": 100.0 + 20.5, "bounds": (0.0, 0.4), "episodes": 8,
                    "tolerance": 0.005}  # fmt: skip
    assert twin["data"]["truth"] == pytest.approx(0.2)
    assert twin["data"]["error"] == pytest.approx(0.01)
    cycle.after_part(31, rows, emit)
    assert len(emit.events) == 2  # once


def test_after_a_promotion_the_twin_is_played_by_the_new_champion(monkeypatch) -> None:
    played: list[Any] = []

    def estimate(env, policy, parameter, figure, observed, bounds, episodes, tolerance):
        played.append((env, policy))
        return TwinEstimate(parameter, 0.2, figure, observed, observed, [(0.0, 1.0)], 8)

    class _Env:
        closed = False

        def close(self) -> None:
            self.closed = True

    class _Champion:
        def make_env(self) -> _Env:
            return _Env()

    monkeypatch.setattr("robocell.line.learning.estimate_parameter", estimate)
    cycle, emit = _cycle(twin_parts=20, twin_episodes=8, bounds=[0.0, 0.4]), _Events()
    old_twin = cycle._twin_env = _Env()
    new = _Champion()
    cycle.follow(new)
    assert old_twin.closed and cycle.policy is new
    cycle.calibrate(10, ["success"], False, emit)
    cycle.after_part(30, _rows(range(0, 31), 0.2), emit)
    ((env, policy),) = played
    assert policy is new and isinstance(env, _Env) and env is not old_twin


def test_a_cell_without_a_twin_estimate_is_refused(tmp_path: Path) -> None:
    cell = {"id": "v", "env_id": "robocell/VisionSort-v1", "bundle": "models/vision",
            "learning": {}}  # fmt: skip
    path = tmp_path / "line.yaml"
    path.write_text(yaml.safe_dump({"line": "l", "cells": [cell]}))
    with pytest.raises(RobocellError, match=r"learning.*no twin estimate"):
        load_line(path)


def test_worn_joints_trigger_learning_and_the_twin_finds_the_friction(tmp_path: Path) -> None:
    cell = {
        "id": "peg-1", "env_id": PEG, "bundle": "models/peg",
        "scenario": [{"at_part": 40, "parameter": "joint_friction_nm", "value": 0.3}],
        "detectors": {"warmup_parts": 30},
        "learning": {"twin_parts": 20, "twin_episodes": 6, "bounds": [0.0, 0.5],
                     "tolerance": 0.02},
    }  # fmt: skip
    path = tmp_path / "line.yaml"
    path.write_text(yaml.safe_dump({"line": "peg-learning", "parts": 110, "cells": [cell]}))
    out = tmp_path / "out"
    assert main(["line", "run", str(path), "-o", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    kinds = [e["type"] for e in summary["events"]]
    assert "calibration" not in kinds
    learning = next(e for e in summary["events"] if e["type"] == "learning")
    twin = next(e for e in summary["events"] if e["type"] == "twin")
    assert learning["part"] >= 40 and twin["part"] == learning["part"] + 20
    data = twin["data"]
    assert data["truth"] == pytest.approx(0.3)
    # 20 parts and 6 twin seeds resolve only "worn": accuracy is bench/twin_accuracy.py's.
    assert 0.1 < data["value"] < 0.5 and data["error"] == pytest.approx(data["value"] - 0.3)
    assert data["episodes"] == 6 * len(data["probes"]) and data["cpu_s"] > 0
    with open_telemetry(out / "telemetry.sqlite", create=False) as store:
        assert all(chain.ok for chain in verify_telemetry(store))
        assert [e["type"] for e in store.events() if e["type"] in ("learning", "twin")] == [
            "learning",
            "twin",
        ]
