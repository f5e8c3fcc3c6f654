"""The motion-control cell: the baseline's cycle, brakes, speed scaling, takt and accuracy."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robocell.envs.make import make_cell, make_controller
from robocell.envs.motion.task import MIN_SCALE

MOTION = "robocell/MotionTransfer-v0"
PACKAGE = Path(__file__).resolve().parents[1] / "envs" / "motion"
CONTROLLER_W = 20.0  # the energy meter's standby power: all a braked arm draws


def _episode(action: list[float], seed: int = 0, **kwargs: Any) -> tuple[dict, list[dict]]:
    """One episode with a constant action: its episode_metrics and every step's info."""
    env = make_cell(MOTION, kwargs)
    try:
        env.reset(seed=seed)
        infos, over = [], False
        while not over:
            *_, terminated, truncated, info = env.step(np.asarray(action, np.float32))
            infos.append(info)
            over = terminated or truncated
    finally:
        env.close()
    return info["episode_metrics"], infos


def test_the_baseline_places_every_part_within_a_millimetre_and_never_brakes() -> None:
    env = make_cell(MOTION)
    controller = make_controller(MOTION, env.unwrapped)
    try:
        obs, _ = env.reset(seed=3)
        over = False
        while not over:
            obs, _, terminated, truncated, info = env.step(controller(obs))
            over = terminated or truncated
    finally:
        env.close()
    metrics = info["episode_metrics"]
    assert metrics["success"] == 1.0 and metrics["stations_reached"] == 4.0
    assert metrics["max_position_error_mm"] <= 1.0
    assert metrics["braked_s"] == 0.0 and metrics["mean_speed_scale"] == 1.0
    assert metrics["cycle_time_s"] == pytest.approx(metrics["takt_s"])


def test_braking_while_waiting_saves_energy_at_the_same_takt() -> None:
    standby, _ = _episode([1.0, -1.0], seed=4)
    braked, infos = _episode([1.0, 1.0], seed=4)
    assert braked["success"] == standby["success"] == 1.0
    assert braked["takt_s"] == standby["takt_s"] and braked["braked_s"] > 0.5
    assert braked["energy_j"] < standby["energy_j"] - 30.0 * braked["braked_s"]
    # With the brakes engaged the drives are off: the controller's standby power is all.
    braked_steps = [i for i in infos if i["energy_j"] < 2.5]
    assert len(braked_steps) == round(braked["braked_s"] / 0.1)
    for info in braked_steps:
        assert info["energy_j"] == pytest.approx(CONTROLLER_W * 0.1, rel=1e-9)


def test_a_brake_request_during_the_moves_is_ignored() -> None:
    env = make_cell(MOTION)
    try:
        obs, _ = env.reset(seed=0)
        while obs[2] > 0:  # stations left
            obs, *_ = env.step(np.array([1.0, 1.0], np.float32))
            assert obs[3] == 0.0 or obs[2] == 0  # brakes engaged only once the cycle is done
    finally:
        env.close()


def test_slower_moves_take_longer_and_miss_a_tight_takt() -> None:
    fast, _ = _episode([1.0, -1.0], seed=1, takt_s=[9.0, 9.0])
    slow, _ = _episode([-1.0, -1.0], seed=1, takt_s=[9.0, 9.0])
    assert slow["mean_speed_scale"] == pytest.approx(MIN_SCALE)
    assert slow["motion_time_s"] > fast["motion_time_s"] + 2.0
    tight, infos = _episode([-1.0, -1.0], seed=1, takt_s=[5.5, 5.5])
    assert tight["takt_missed"] == 1.0 and tight["success"] == 0.0
    assert infos[-1]["reward/takt"] == -10.0


def test_a_moved_fixture_spoils_the_placement_until_the_belief_matches() -> None:
    moved = {"fixture_offset_mm": [0.0, 2.0, 0.0]}
    off, _ = _episode([1.0, -1.0], seed=2, **moved)
    assert off["success"] == 0.0 and off["max_position_error_mm"] > 1.5
    fixed, _ = _episode([1.0, -1.0], seed=2, **moved, believed_fixture_offset_mm=[0, 2, 0])
    assert fixed["success"] == 1.0 and fixed["max_position_error_mm"] <= 1.0


def test_a_takt_outside_the_episode_is_refused_by_name() -> None:
    with pytest.raises(Exception, match="takt_s"):
        make_cell(MOTION, {"takt_s": [5.0, 12.0]})


def test_the_cell_imports_only_the_public_api() -> None:
    allowed = {"robocell.cells", "numpy", "gymnasium", "ruckig", "__future__"}
    allowed |= {"collections.abc", "dataclasses", "typing"}  # the standard library
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                own = name.startswith("robocell.envs.motion")
                assert own or name in allowed or name.split(".")[0] in allowed, (path.name, name)
