"""The simulation wrapper: named bodies, clean close, no leaked clients."""

from __future__ import annotations

import numpy as np
import pytest

from robocell.envs.arms import IIWA_HOME
from robocell.envs.robot import KukaIiwa, Tool
from robocell.envs.sim import Sim


def test_clients_open_and_close_without_leaking() -> None:
    clients = set()
    for _ in range(200):
        sim = Sim()
        sim.create_box("box", (0.1, 0.1, 0.1), (0.0, 0.0, 0.1))
        clients.add(sim.client_id)
        sim.close()
    # A leaked client would keep its slot, so every new client would get a new id.
    assert len(clients) == 1


def test_thousands_of_resets_keep_one_client_and_a_fixed_world() -> None:
    sim = Sim()
    client = sim.client_id
    for _ in range(2000):
        sim.reset()
        sim.create_box("table", (0.3, 0.3, 0.05), (0.6, 0.0, 0.05))
        sim.create_box("part", (0.01, 0.01, 0.01), (0.6, 0.0, 0.2), mass_kg=0.1)
    assert sim.client_id == client
    assert sim.body_id("part") == 1  # ids restart: nothing survived the resets
    sim.close()
    sim.close()  # closing twice is harmless
    assert not sim.connected


def test_bodies_are_found_by_name() -> None:
    sim = Sim()
    sim.create_box("part", (0.01, 0.01, 0.01), (0.1, 0.2, 0.3))
    position, _ = sim.base_pose("part")
    assert position == pytest.approx([0.1, 0.2, 0.3])
    with pytest.raises(KeyError, match="no body named 'missing'"):
        sim.body_id("missing")
    with pytest.raises(ValueError, match="already exists"):
        sim.create_box("part", (0.01, 0.01, 0.01), (0.0, 0.0, 0.0))
    sim.close()


def test_falling_box_lands_on_the_floor() -> None:
    sim = Sim()
    sim.create_box("floor", (1.0, 1.0, 0.05), (0.0, 0.0, -0.05))
    sim.create_box("part", (0.02, 0.02, 0.02), (0.0, 0.0, 0.5), mass_kg=0.2)
    for _ in range(480):
        sim.step()
    position, _ = sim.base_pose("part")
    assert position[2] == pytest.approx(0.02, abs=2e-3)
    sim.close()


def test_robot_ik_reaches_a_tool_down_pose() -> None:
    sim = Sim()
    robot = KukaIiwa(sim, Tool("torch", 0.15, 0.01))
    robot.load(IIWA_HOME)
    target = np.array([0.6, 0.1, 0.25])
    for _ in range(10):  # IK once per control period, as the cells do
        robot.set_joint_targets(robot.ik(target))
        for _ in range(24):
            sim.step()
    position, orientation = robot.tcp_pose()
    assert np.linalg.norm(position - target) < 1e-3
    assert abs(orientation[0]) == pytest.approx(1.0, abs=1e-3)  # tool z-axis points down
    assert np.all(robot.joint_state().q >= robot.lower) and np.all(
        robot.joint_state().q <= robot.upper
    )
    sim.close()
