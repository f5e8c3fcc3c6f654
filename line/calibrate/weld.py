"""TCP calibration of ``robocell/WeldSeam-v1``: the four-point method at a TCP-check station.

A reference pin stands at a known place beside the fixture, with a laser gate (three light
planes crossing at the pin tip). From six torch orientations the robot brings the wire tip
to the pin tip: per gate plane it bisects the TCP position along that axis on the gate's
reading alone (is the true tip beyond the plane?), each reading with a seeded 0.02 mm
repeatability (Gaussian). The flange (TCP link) poses at the found points come from the
arm's forward kinematics; R_i t + p_i = c is solved for the tip offset t (TCP frame) and
the pin c by least squares.

Reduction: the arm moves kinematically on a copy of the cell's arm (exact IK, teleported,
no dynamics); the time is the moves at rated joint speeds plus a dwell per gate reading,
the energy an estimate (standby power over that time).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from robocell.envs.robot import Robot
from robocell.envs.sim import Sim, quat_from_euler, rotation_matrix
from robocell.envs.weld.plant import true_tip_offset_mm
from robocell.errors import RobocellError
from robocell.line.calibrate import CalibrationResult, move_time_s, standby_energy_j

PIN_TIP_M = np.array([0.50, -0.30, 0.20])  # the TCP-check station beside the fixture
GATE_REPEATABILITY_MM = 0.02  # 1 sigma of one light-gate reading
SEARCH_HALF_MM = 40.0  # bisection bracket either side of where the belief puts the tip
RESOLUTION_MM = 0.002
DWELL_S = 0.05  # per gate reading: settle and read
TILT_DEG = 25.0


def torch_orientations(home_tool_yaw_rad: float) -> list[np.ndarray]:
    """Six torch orientations: down, down turned 60°, and tilted 25° four ways."""
    # Torch down, turned with the arm's base towards the pin (joint 7 mid-range), as the
    # cell's planner holds its tool: the tool's yaw at home (the arm's) plus the base's turn.
    yaw = float(np.arctan2(PIN_TIP_M[1], PIN_TIP_M[0])) + home_tool_yaw_rad
    down = Rotation.from_matrix(rotation_matrix(quat_from_euler(np.pi, 0.0, yaw)))
    turns = [Rotation.identity(), Rotation.from_euler("z", 60, degrees=True)]
    for azimuth in (0.0, 90.0, 180.0, 270.0):
        axis = np.array([np.cos(np.radians(azimuth)), np.sin(np.radians(azimuth)), 0.0])
        turns.append(Rotation.from_rotvec(np.radians(TILT_DEG) * axis))
    return [(turn * down).as_matrix() for turn in turns]


class _Station:
    """The arm (a kinematic copy) and the gate; counts readings and move time."""

    def __init__(self, cell: Any, seed: int) -> None:
        self.sim = Sim(simple_broadphase=False)  # never stepped
        self.arm = Robot(self.sim, cell.robot.tool, cell.robot.arm)  # the cell's own arm
        self.arm.load()
        v = cell._line_values
        self.tip_m = true_tip_offset_mm(v["tcp_offset_mm"], v["wire_stickout_mm"]) / 1000.0
        self.rng = np.random.default_rng(seed)
        self.q = self.sim.joint_states(self.arm.name, self.arm.joint_indices)[0]
        self.time_s = 0.0
        self.readings = 0
        self.reorient = True

    def move(self, position_m: np.ndarray, rotation: np.ndarray) -> None:
        """Put the TCP link at the pose (exact IK from the current posture) and time it."""
        seed = self.q
        if self.readings == 0 or self.reorient:  # a new orientation: PyBullet's IK seeds it
            seed = np.array(self.arm.home)
            seed[0] = float(np.arctan2(position_m[1], position_m[0]))
            self.reorient = False
        q = _solve_ik(self.arm, position_m, rotation, seed)
        self.time_s += move_time_s(self.q, q, self.arm.max_speed_rad_s)
        self.q = q

    def beyond(self, axis: int) -> bool:
        """The gate plane ``axis``: is the true wire tip past the pin tip along it?"""
        position, orientation = self.arm.tcp_pose()
        tip = position + rotation_matrix(orientation) @ self.tip_m
        noise_m = self.rng.normal(0.0, GATE_REPEATABILITY_MM) / 1000.0
        self.readings += 1
        self.time_s += DWELL_S
        return bool(tip[axis] + noise_m > PIN_TIP_M[axis])

    def close(self) -> None:
        self.sim.close()


def _solve_ik(arm: Robot, goal: np.ndarray, rotation: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Damped Newton steps on the copy to 0.1 µm and 0.1 µrad (PyBullet's IK stops ~1 mm off)."""
    q = np.array(seed, dtype=float)
    for _ in range(300):
        arm.sim.reset_joints(arm.name, arm.joint_indices, q)
        tcp, orientation = arm.tcp_pose()
        turn = rotation @ rotation_matrix(orientation).T
        vee = 0.5 * np.array(
            [turn[2, 1] - turn[1, 2], turn[0, 2] - turn[2, 0], turn[1, 0] - turn[0, 1]]
        )
        error = np.concatenate([goal - tcp, vee])
        if np.abs(error).max() < 1e-7:
            return q
        jacobian = arm.jacobian(q)
        step = jacobian.T @ np.linalg.solve(jacobian @ jacobian.T + 1e-8 * np.eye(6), error)
        q = np.clip(q + step * min(1.0, 0.2 / np.abs(step).max()), arm.lower, arm.upper)
    raise RobocellError(f"TCP check: no IK solution reaches {goal.round(4).tolist()} m")


def _touch_pin(station: _Station, rotation: np.ndarray, believed_m: np.ndarray) -> np.ndarray:
    """Bisect each gate axis until the true tip sits on the pin tip; the TCP link position."""
    position = PIN_TIP_M - rotation @ believed_m
    station.reorient = True
    for axis in range(3):
        low, high = -SEARCH_HALF_MM / 1000.0, SEARCH_HALF_MM / 1000.0
        while high - low > RESOLUTION_MM / 1000.0:
            middle = 0.5 * (low + high)
            probe = position.copy()
            probe[axis] += middle
            station.move(probe, rotation)
            low, high = (low, middle) if station.beyond(axis) else (middle, high)
        position[axis] += 0.5 * (low + high)
    station.move(position, rotation)
    return station.arm.tcp_pose()


def solve_four_point(
    poses: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, float]:
    """Least squares of R_i t + p_i = c: tip offset t (TCP frame, m), pin c (m), RMS (m)."""
    rows = np.vstack([np.hstack([rotation, -np.eye(3)]) for _, rotation in poses])
    rhs = np.concatenate([-position for position, _ in poses])
    solution, *_ = np.linalg.lstsq(rows, rhs, rcond=None)
    residual = rows @ solution - rhs
    return solution[:3], solution[3:], float(np.sqrt(np.mean(residual**2)))


def calibrate_weld(env: Any, seed: int = 0) -> CalibrationResult:
    """Calibrate the wire tip of a reset WeldSeam cell at the TCP-check station (see module)."""
    cell = env.unwrapped
    believed_mm = np.asarray(cell.belief()["believed_tcp_offset_mm"], dtype=float)
    station = _Station(cell, seed)
    try:
        poses = []
        for rotation in torch_orientations(cell.robot.arm.home_tool_yaw_rad):
            position, orientation = _touch_pin(station, rotation, believed_mm / 1000.0)
            poses.append((np.asarray(position), rotation_matrix(orientation)))
        tip_m, pin_m, rms_m = solve_four_point(poses)
        truth_mm = 1000.0 * station.tip_m
        duration_s, readings = station.time_s, station.readings
    finally:
        station.close()
    tip_mm = 1000.0 * tip_m
    return CalibrationResult(
        values={"believed_tcp_offset_mm": tuple(float(v) for v in tip_mm)},
        error_before={"tip_mm": float(np.linalg.norm(believed_mm - truth_mm))},
        error_after={"tip_mm": float(np.linalg.norm(tip_mm - truth_mm))},
        duration_s=duration_s,
        energy_j=standby_energy_j(duration_s),
        method="four-point TCP check: laser-gate bisection at a reference pin, least squares",
        detail={
            "residual_mm": 1000.0 * rms_m,
            "pin_error_mm": float(1000.0 * np.linalg.norm(pin_m - PIN_TIP_M)),
            "n_points": len(poses),
            "gate_readings": readings,
            "gate_repeatability_mm": GATE_REPEATABILITY_MM,
            "energy": "estimate: standby power over the routine, drives not metered",
        },
    )
