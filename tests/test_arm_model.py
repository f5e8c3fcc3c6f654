"""The arm's Pinocchio model against PyBullet on the peg tool's URDF, at random joint states.

Tolerances are absolute, 1e-9 in every element: at these states Jacobian entries are at most
1.0 (m/rad or 1), mass matrix entries at most 3.6 kg·m² and inverse-dynamics torques at most
57 N·m, so 1e-9 absolute is at least 1.7e-11 relative. The two agree to 2e-14. PyBullet
reports link poses in single precision, so the TCP pose (which also sees where the base
stands: the Jacobian does not) is checked to 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest

from robocell.envs.arm_model import ArmModel
from robocell.envs.peg.task import PEG
from robocell.envs.robot import KukaIiwa
from robocell.envs.sim import Sim, rotation_matrix

STATES = 24
TOLERANCE = 1e-9
BASE = (0.3, -0.2, 0.1)  # off the origin: the model must stand where the robot does


@pytest.fixture(scope="module")
def arm() -> tuple[KukaIiwa, ArmModel]:
    sim = Sim()
    robot = KukaIiwa(sim, PEG, base_position=BASE)
    robot.load()
    yield robot, ArmModel(robot.urdf_path, robot.base_position)
    sim.close()


def _states(robot: KukaIiwa) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(26)
    return [
        (rng.uniform(robot.lower, robot.upper), rng.uniform(-2.0, 2.0, robot.n_joints))
        for _ in range(STATES)
    ]


def test_jacobian_mass_matrix_and_inverse_dynamics_equal_pybullets(arm) -> None:
    robot, model = arm
    for q, qd in _states(robot):
        model.update(q, qd)
        np.testing.assert_allclose(model.jacobian, robot.jacobian(q), rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(
            model.mass_matrix, robot.sim.mass_matrix(robot.name, q), rtol=0, atol=TOLERANCE
        )
        np.testing.assert_allclose(
            model.bias_torques_nm, robot.gravity_torques(q, qd), rtol=0, atol=TOLERANCE
        )


def test_the_velocity_terms_are_checked_too(arm) -> None:
    # Coriolis and centrifugal torques at these speeds are far above the tolerance, so the
    # inverse-dynamics check above sees them (not only gravity).
    robot, model = arm
    q, qd = _states(robot)[0]
    model.update(q, qd)
    moving = model.bias_torques_nm.copy()
    model.update(q, np.zeros_like(qd))
    assert np.abs(moving - model.bias_torques_nm).max() > 1e3 * TOLERANCE


def test_the_tcp_pose_equals_pybullets(arm) -> None:
    robot, model = arm
    for q, qd in _states(robot):
        robot.reset_joints(q)
        model.update(q, qd)
        position, quat = robot.tcp_pose()
        np.testing.assert_allclose(model.tcp_position_m, position, rtol=0, atol=1e-6)
        np.testing.assert_allclose(model.tcp_rotation, rotation_matrix(quat), rtol=0, atol=1e-6)


def test_the_rotation_error_turns_the_tcp_into_the_target(arm) -> None:
    robot, model = arm
    q, qd = _states(robot)[1]
    model.update(q, qd)
    error = np.array([0.1, -0.2, 0.05])
    angle = np.linalg.norm(error)
    axis = error / angle
    skew = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    turn = np.eye(3) + np.sin(angle) * skew + (1 - np.cos(angle)) * skew @ skew
    np.testing.assert_allclose(model.rotation_error(turn @ model.tcp_rotation), error, atol=1e-12)


def test_a_urdf_without_the_tcp_link_is_refused(arm) -> None:
    robot, _ = arm
    with pytest.raises(KeyError, match="no link named 'tip'"):
        ArmModel(robot.urdf_path, tcp_frame="tip")
