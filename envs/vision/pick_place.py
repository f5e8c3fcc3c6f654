"""Motion of the suction pick-and-place primitive: phase timing, joint moves, exact IK.

The primitive runs inside one env step over a fixed number of physics steps: IK once per
waypoint (:class:`ArmPlanner`), joint-space moves between waypoints (:func:`joint_move`),
each phase within its time budget (:class:`PickPlaceTiming`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from robocell.envs.arms import IIWA, IIWA_MAX_SPEED_RAD_S, ArmSpec
from robocell.envs.robot import Robot, Tool
from robocell.envs.sim import Sim, quat_from_euler, rotation_matrix


@dataclass(frozen=True)
class PickPlaceTiming:
    """Time budget (s) of each phase of the pick-and-place primitive, in order.

    Moves take as long as their slowest joint needs at its rated speed and wait out the
    rest of their budget. The budgets cover the longest moves in the cell: 1.13 s from one
    corner of the pick area to the opposite one (elbow A4 at 75 °/s) and 0.93 s from a
    tray corner to the far slot of a bin.
    """

    move_s: float = 1.15
    descend_s: float = 0.25
    seal_s: float = 0.1
    lift_s: float = 0.25
    transfer_s: float = 0.95
    release_s: float = 0.2

    def steps(self, dt_s: float) -> list[int]:
        """Physics steps of each phase."""
        phases = (self.move_s, self.descend_s, self.seal_s, self.lift_s, self.transfer_s)
        return [round(s / dt_s) for s in (*phases, self.release_s)]


TIMING = PickPlaceTiming()
RAMP = 0.2  # trapezoidal speed profile: accelerate over the first 20 %, brake over the last


def joint_move(
    q_from: np.ndarray,
    q_to: np.ndarray,
    steps: int,
    dt_s: float,
    max_speed_rad_s: Sequence[float] = IIWA_MAX_SPEED_RAD_S,
    max_accel_rad_s2: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Joint positions and velocities (steps × joints) of a synchronised move, then a hold.

    All joints follow one trapezoidal speed profile (peak speed 1.25 × mean); the move lasts
    as long as its slowest joint needs at its rated speed (``max_speed_rad_s``, the arm's)
    and, where the arm has them, within its rated accelerations (``max_accel_rad_s2``: the
    profile's peak acceleration is 1.25 / 0.2 · Δq / T²), at most ``steps`` physics steps.
    """
    peak = 1.0 / (1.0 - RAMP)
    distance = np.abs(q_to - q_from)
    need_s = float(np.max(peak * distance / np.asarray(max_speed_rad_s)))
    if max_accel_rad_s2 is not None:
        accel_s = np.sqrt(peak * distance / (RAMP * np.asarray(max_accel_rad_s2)))
        need_s = max(need_s, float(np.max(accel_s)))
    moving = int(np.clip(np.ceil(need_s / dt_s), 1, steps))
    s = np.minimum(np.arange(1, steps + 1) / moving, 1.0)
    rest = 1.0 - s
    blend = np.where(
        s < RAMP,
        peak * s * s / (2 * RAMP),
        np.where(rest < RAMP, 1.0 - peak * rest * rest / (2 * RAMP), peak * (s - RAMP / 2)),
    )
    rate = peak * np.minimum(1.0, np.minimum(s, rest) / RAMP) / (moving * dt_s)
    delta = q_to - q_from
    return q_from + blend[:, None] * delta, rate[:, None] * delta


class ArmPlanner:
    """Inverse kinematics on a kinematic copy of the arm in its own client (never stepped).

    PyBullet's solver iterates from a body's current state and stops about a millimetre
    short; here every solve starts from an explicit seed posture (the home posture turned
    towards the target) and runs damped Newton steps on the copy. Results are exact to
    micrometres and depend on the target alone, so the redundant elbow cannot drift from
    one pick to the next. The tool's yaw follows the arm's base angle from its home yaw (the cup
    is round).
    """

    def __init__(self, tool: Tool, arm: ArmSpec | str = IIWA) -> None:
        self.sim = Sim(simple_broadphase=False)  # never stepped
        self.arm = Robot(self.sim, tool, arm)
        self.arm.load()

    def solve(self, position: Sequence[float], seed: np.ndarray | None = None) -> np.ndarray:
        """Joint positions that put the TCP at ``position``, tool pointing down."""
        yaw = float(np.arctan2(position[1], position[0]))
        tool_yaw = yaw + self.arm.arm.home_tool_yaw_rad
        target = rotation_matrix(quat_from_euler(np.pi, 0.0, tool_yaw))
        q = np.array(self.arm.home) if seed is None else np.array(seed, dtype=float)
        if seed is None:
            q[0] = yaw
        goal = np.asarray(position, dtype=float)
        arm = self.arm
        for _ in range(50):
            self.sim.reset_joints(arm.name, arm.joint_indices, q)  # teleport: never stepped
            tcp, orientation = arm.tcp_pose()
            turn = target @ rotation_matrix(orientation).T
            error = np.concatenate([goal - tcp, 0.5 * _vee(turn - turn.T)])
            if np.abs(error).max() < 1e-7:
                break
            jacobian = arm.jacobian(q)
            damped = jacobian @ jacobian.T + 1e-8 * np.eye(6)
            q = q + jacobian.T @ np.linalg.solve(damped, error)
        return np.clip(q, arm.lower, arm.upper)

    def close(self) -> None:
        """Release the client."""
        self.sim.close()


def _vee(skew: np.ndarray) -> np.ndarray:
    return np.array([skew[2, 1], skew[0, 2], skew[1, 0]])
