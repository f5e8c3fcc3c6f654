"""Accuracy of the in-plant calibration routines over random knocks.

Vision: camera tilt uniform in −5 … 5° and shift uniform in −20 … 20 mm (x, y); weld: torch
bend uniform in −8 … 8 mm per axis and stick-out in 11 … 19 mm. Prints the worst and mean
error after calibration against the plant's truth, and the routines' time and energy.

    .venv/bin/python bench/calibration_accuracy.py [knocks, default 24]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from robocell.envs.make import make_cell
from robocell.line.calibrate import ROUTINES


def _knocks(env_id: str, count: int, rng: np.random.Generator) -> list[dict]:
    if env_id == "robocell/VisionSort-v1":
        return [
            {"camera_tilt_deg": float(rng.uniform(-5, 5)),
             "camera_shift_mm": rng.uniform(-20, 20, 2).tolist()}
            for _ in range(count)
        ]  # fmt: skip
    return [
        {"tcp_offset_mm": rng.uniform(-8, 8, 3).tolist(),
         "wire_stickout_mm": float(rng.uniform(11, 19))}
        for _ in range(count)
    ]  # fmt: skip


def bench(env_id: str, count: int) -> None:
    """Calibrate ``count`` random knocks of one cell; print the error figures."""
    errors: dict[str, list[float]] = {}
    costs, started = [], time.perf_counter()
    for knock in _knocks(env_id, count, np.random.default_rng(2026)):
        env = make_cell(env_id, knock)
        env.reset(seed=0)
        result = ROUTINES[env_id](env)
        env.close()
        for name, value in result.error_after.items():
            errors.setdefault(name, []).append(value)
        costs.append((result.duration_s, result.energy_j))
    wall_s = (time.perf_counter() - started) / count
    for name, values in errors.items():
        print(f"{env_id} {name}: max {max(values):.4f} mean {np.mean(values):.4f} (n={count})")
    duration_s, energy_j = np.mean(costs, axis=0)
    print(f"{env_id} routine: {duration_s:.1f} s simulated, {energy_j:.0f} J, {wall_s:.2f} s wall")


if __name__ == "__main__":
    knocks = int(sys.argv[1]) if len(sys.argv) > 1 else 24
    for cell in ROUTINES:
        bench(cell, knocks)
