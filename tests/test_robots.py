"""The arms: the Robot interface per arm, and every cell with every arm (runs or refuses)."""

from __future__ import annotations

import numpy as np
import pytest

from robocell.envs.arms import ARMS, arm_spec
from robocell.envs.make import make_cell, make_controller
from robocell.envs.motion.env import MotionTransferEnv
from robocell.envs.peg.env import PegInsertEnv, PegInsertEnvV1
from robocell.envs.robot import TOOL_DOWN, KukaIiwa, Robot, Tool
from robocell.envs.rollout import run_episode
from robocell.envs.sim import Sim, rotation_matrix
from robocell.envs.vision.env import VisionSortEnv
from robocell.envs.weld.env import WeldSeamEnv

PROBE = Tool("probe", length_m=0.1, size_m=0.01)
# Cells that refuse an arm, and a fragment of the reason the ValueError must give.
REFUSED = {
    ("robocell/WeldSeam-v1", "xarm6"): "reaches 0.700 m",
    ("robocell/VisionSort-v1", "xarm6"): "reaches 0.700 m",
    ("robocell/PegInsert-v0", "xarm6"): "has 6 joints",
    ("robocell/PegInsert-v1", "xarm6"): "has 6 joints",
    ("robocell/MotionTransfer-v0", "xarm6"): "has 6 joints",
}
CELLS = {
    "robocell/WeldSeam-v1": WeldSeamEnv,
    "robocell/VisionSort-v1": VisionSortEnv,
    "robocell/PegInsert-v0": PegInsertEnv,
    "robocell/PegInsert-v1": PegInsertEnvV1,
    "robocell/MotionTransfer-v0": MotionTransferEnv,
}


@pytest.fixture(params=sorted(ARMS))
def loaded(request: pytest.FixtureRequest):
    sim = Sim()
    robot = Robot(sim, PROBE, request.param)
    robot.load()
    yield robot
    sim.close()


def test_joints_and_limits_match_the_data_sheet(loaded: Robot) -> None:
    arm = loaded.arm
    joints = loaded.sim.joints(loaded.name)
    assert len(loaded.joint_indices) == arm.n_joints == len(arm.max_torque_nm)
    assert np.all(loaded.lower < loaded.upper)
    assert np.all((loaded.lower <= arm.home) & (np.asarray(arm.home) <= loaded.upper))
    movable = [joint for joint in joints if joint.kind != 4]
    assert len(movable) == arm.n_joints  # fingers and hands are left out
    if arm.name != "iiwa":  # the iiwa URDF carries placeholder limits (300 N·m, 10 rad/s)
        assert [j.max_force for j in movable] == pytest.approx(arm.max_torque_nm)
        assert [j.max_velocity for j in movable] == pytest.approx(arm.max_speed_rad_s, abs=2e-3)


def test_home_is_tool_down_in_front(loaded: Robot) -> None:
    position, orientation = loaded.tcp_pose()
    assert rotation_matrix(orientation)[:, 2] @ np.array([0.0, 0.0, -1.0]) > 0.999
    assert position[0] > 0.4 and abs(position[1]) < 0.01


def test_ik_reaches_a_pose(loaded: Robot) -> None:
    target = np.array([0.55, 0.1, 0.3])
    for _ in range(20):
        loaded.reset_joints(loaded.ik(target, TOOL_DOWN))
    position, orientation = loaded.tcp_pose()
    assert np.linalg.norm(position - target) < 1e-3
    assert rotation_matrix(orientation)[:, 2] @ np.array([0.0, 0.0, -1.0]) > 0.9999


def test_energy_constants_present_and_positive(loaded: Robot) -> None:
    energy = loaded.arm.energy
    assert 0.0 < energy.drive_efficiency <= 1.0
    assert energy.copper_loss_w_per_nm2 > 0.0 and energy.standby_w > 0.0
    assert loaded.jacobian(loaded.joint_state().q).shape == (6, loaded.arm.n_joints)


def test_kuka_iiwa_is_the_iiwa_robot() -> None:
    sim = Sim()
    try:
        robot = KukaIiwa(sim, PROBE)
        assert robot.arm is ARMS["iiwa"] and robot.urdf_path == Robot(sim, PROBE).urdf_path
    finally:
        sim.close()


def test_an_unknown_arm_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="robot must be one of"):
        arm_spec("ur5e")
    with pytest.raises(ValueError, match="robot must be one of"):
        WeldSeamEnv(robot="ur5e")


@pytest.mark.parametrize("env_id", CELLS)
@pytest.mark.parametrize("arm", ["panda", "xarm6"])
def test_each_cell_runs_its_scripted_episode_or_refuses(env_id: str, arm: str) -> None:
    if (env_id, arm) in REFUSED:
        with pytest.raises(ValueError, match=f"robot='{arm}'.*{REFUSED[env_id, arm]}"):
            CELLS[env_id](robot=arm)
        return
    env = make_cell(env_id, {"robot": arm})
    try:
        assert env.unwrapped.robot.arm.name == arm
        metrics = run_episode(env, make_controller(env_id, env.unwrapped), seed=2_000_000)
    finally:
        env.close()
    assert metrics["success"] == 1.0 and "fault" not in metrics
