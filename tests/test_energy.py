"""Energy meter: hand-computed cases and the meter inside a cell."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from robocell.envs import ENV_IDS
from robocell.envs.check import check_energy_metering
from robocell.envs.energy import EnergyConstants, EnergyMeter, drive_power_w

C = EnergyConstants()
DT = 1.0 / 240.0


def _meter(tau: list[float], qd: list[float], tool_w: float = 0.0, steps: int = 240) -> float:
    meter = EnergyMeter()
    tau_a = np.tile(tau, (steps, 1))
    qd_a = np.tile(qd, (steps, 1))
    return meter.add_steps(tau_a, qd_a, np.full(steps, tool_w), DT)


def test_holding_still_costs_copper_loss_plus_standby() -> None:
    # 1 s holding 30 N·m and 10 N·m: k·(30² + 10²) = 0.01 · 1000 = 10 W, plus 20 W standby.
    joules = _meter([30.0, 10.0], [0.0, 0.0])
    assert joules == pytest.approx(10.0 + C.standby_w)


def test_moving_costs_mechanical_power_over_efficiency() -> None:
    # 20 N·m at 1 rad/s: 20 W mechanical / 0.85 + 0.01 · 400 = 23.53 + 4 W, plus standby.
    joules = _meter([20.0], [1.0])
    assert joules == pytest.approx(20.0 / 0.85 + 4.0 + C.standby_w)
    assert joules > _meter([20.0], [0.0])


def test_braking_is_not_regenerated() -> None:
    # Negative mechanical power is dissipated: only copper loss and standby remain.
    assert _meter([20.0], [-1.0]) == pytest.approx(_meter([20.0], [0.0]))


def test_arc_on_costs_arc_power() -> None:
    still = _meter([0.0], [0.0])
    arcing = _meter([0.0], [0.0], tool_w=C.arc_power_w)
    assert arcing - still == pytest.approx(C.arc_power_w)


def test_meter_accumulates_per_step_and_total() -> None:
    meter = EnergyMeter()
    meter.add_steps(np.zeros((24, 7)), np.zeros((24, 7)), np.zeros(24), 0.1 / 24)
    first = meter.take_step_energy_j()
    meter.add_steps(np.zeros((24, 7)), np.zeros((24, 7)), np.full(24, 100.0), 0.1 / 24)
    second = meter.take_step_energy_j()
    assert first == pytest.approx(C.standby_w * 0.1)
    assert second == pytest.approx((C.standby_w + 100.0) * 0.1)
    assert meter.total_j == pytest.approx(first + second)
    assert meter.take_step_energy_j() == 0.0


def test_power_is_vectorised_over_steps() -> None:
    tau = np.array([[1.0, 2.0], [3.0, 4.0]])
    qd = np.array([[1.0, -1.0], [0.0, 2.0]])
    expected = [1.0 / 0.85 + 0.01 * 5.0, 8.0 / 0.85 + 0.01 * 25.0]
    assert drive_power_w(tau, qd, C) == pytest.approx(expected)


def test_weld_cell_holding_still_costs_about_standby_and_holding_torque() -> None:
    env = gym.make("robocell/WeldSeam-v1")
    env.reset(seed=0)
    for _ in range(5):  # let the arm settle
        env.step(np.array([0.0, 0.0, 0.0, -1.0], np.float32))
    _, _, _, _, info = env.step(np.array([0.0, 0.0, 0.0, -1.0], np.float32))
    holding_w = info["energy_j"] / 0.1
    env.close()
    assert C.standby_w + 3.0 < holding_w < C.standby_w + 30.0


def test_weld_cell_moving_costs_more_than_holding() -> None:
    env = gym.make("robocell/WeldSeam-v1")
    env.reset(seed=0)
    hold = [env.step(np.zeros(4, np.float32))[4]["energy_j"] for _ in range(5)]
    move = [env.step(np.array([1.0, 1.0, 1.0, -1.0], np.float32))[4]["energy_j"] for _ in range(5)]
    env.close()
    assert sum(move) > sum(hold)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_meter_equals_a_reference_reading_the_joints_at_every_physics_step(env_id: str) -> None:
    # Real episodes of the scripted controller (contacts, arc, suction) and random actions.
    check_energy_metering(env_id, seed=0)
