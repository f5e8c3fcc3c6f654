"""The assembly cell's task: peg, fixture pose, compliant control, sensing, reward, success."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from robocell.envs.core import Task
from robocell.envs.peg.fixture import HoleGeometry
from robocell.envs.peg.ft_sensor import FTSensorSpec, WristFTSensor, contact_wrench
from robocell.envs.peg.impedance import CartesianImpedance, ImpedanceGains
from robocell.envs.robot import Robot, Tool
from robocell.envs.sim import (
    DEFAULT_CONTACT_BREAKING_THRESHOLD,
    Sim,
    quat_from_euler,
    rotation_matrix,
)

# A 20 × 20 mm steel peg, 100 mm long (7.85 g/cm³ × 40 cm³ ≈ 0.31 kg), its tip is the TCP.
PEG_HALF_MM = 10.0
PEG = Tool(
    "peg",
    length_m=0.1,
    size_m=PEG_HALF_MM / 1000.0,
    shape="box",
    mass_kg=0.31,
    rgba=(0.72, 0.74, 0.78, 1.0),
)
HOLE_DEPTH_MM = 30.0
SUCCESS_DEPTH_MM = 25.0
FIXTURE_HALF_MM = 50.0
FIXTURE_TOP_Z_M = 0.12  # the fixture stands on the floor; its top is 120 mm up
HOLE_CENTRE_M = (0.6, 0.0)  # mean hole position in front of the robot
# Machined steel on steel, lightly oiled: μ ≈ 0.15–0.3 (Engineering ToolBox, friction
# coefficients). PyBullet multiplies the two bodies' coefficients, so the peg gets 1.0.
FRICTION = 0.3
START_HEIGHT_MM = (20.0, 30.0)
START_OFFSET_MM = 10.0
MAX_STEP_MM = 1.0  # set-point displacement per step and axis at action ±1
SETPOINT_BOX_MM = np.array([[-30.0, -30.0, -45.0], [30.0, 30.0, 60.0]])
SETPOINT_LEASH_MM = 30.0  # set-point may lead the TCP by this much: K × 30 mm = 60 N at most
SETTLE_STEPS = 24  # physics steps (0.1 s) to settle and tare the sensor before the episode
SOFT_FORCE_FRACTION = 0.5  # force_excess starts at half the limit
# Bullet keeps a contact point until it slides by 0.02 × the shape's radius (≈ 1 mm for the
# peg): at 0.5 mm clearance a stale point can hold the peg on the chamfer's lip after it has
# moved over the bore. 0.001 (≈ 0.05 mm) makes contacts follow the geometry.
CONTACT_BREAKING_THRESHOLD = 0.001


@dataclass
class PegState:
    """Where the peg is, in mm, and what it has felt (updated once per control period)."""

    tcp_nominal_mm: np.ndarray  # TCP in the nominal hole frame
    tcp_true_mm: np.ndarray  # TCP in the true hole frame
    velocity_mm_s: np.ndarray  # TCP velocity, nominal hole frame
    wrench: np.ndarray  # sensed contact force (N) and moment (N·m), nominal hole frame
    depth_mm: float = 0.0
    max_depth_mm: float = 0.0
    peak_force_n: float = 0.0
    step_peak_force_n: float = 0.0
    damaged: bool = False
    inserted_at_s: float | None = None


class PegInsertTask(Task):
    """Peg-in-hole insertion under a compliant arm; see ``robocell.envs.peg.env.PegInsertEnv``.

    Args:
        sim: the simulation.
        robot: the arm carrying :data:`PEG`.
        clearance_mm: hole clearance per side (> 0).
        chamfer_mm: 45° chamfer at the hole's mouth (0 ≤ c < 5 mm).
        position_error_mm: how far (per axis, x and y) the nominal hole may be off.
        force_limit_n: contact force that damages the part.
        gains: impedance controller gains.
        sensor: wrist force/torque sensor noise.
        hole_range_mm: the true hole lies within ± this (x and y) of :data:`HOLE_CENTRE_M`.
        hole_yaw_range_deg: the hole's yaw lies within ± this.
        impedance: makes the impedance controller at each reset, called as
            ``impedance(robot, gains, extra_joints=[…])``: :class:`CartesianImpedance`
            (PyBullet's model, ``PegInsert-v0``) or one on Pinocchio's model (v1).
    """

    control_period_s = 0.05
    episode_time_s = 15.0
    reward_term_names = ("approach", "alignment", "depth", "force_excess", "success")

    def __init__(
        self,
        sim: Sim,
        robot: Robot,
        clearance_mm: float = 0.5,
        chamfer_mm: float = 2.0,
        position_error_mm: float = 4.0,
        force_limit_n: float = 50.0,
        gains: ImpedanceGains | None = None,
        sensor: FTSensorSpec | None = None,
        hole_range_mm: float = 50.0,
        hole_yaw_range_deg: float = 30.0,
        impedance: Callable[..., CartesianImpedance] = CartesianImpedance,
    ) -> None:
        super().__init__(sim, robot)
        _check_range("clearance_mm", clearance_mm, 0.0, PEG_HALF_MM, low_open=True)
        _check_range("chamfer_mm", chamfer_mm, 0.0, HOLE_DEPTH_MM - SUCCESS_DEPTH_MM)
        _check_range("position_error_mm", position_error_mm, 0.0, 20.0)
        _check_range("force_limit_n", force_limit_n, 0.0, 1e4, low_open=True)
        self.chamfer_mm = chamfer_mm
        self.set_clearance(clearance_mm)
        self.position_error_mm = position_error_mm
        self.force_limit_n = force_limit_n
        self.gains = gains or ImpedanceGains()
        self.gains.validate()
        self.sensor_spec = sensor or FTSensorSpec()
        self.sensor_spec.validate()
        self.hole_range_mm = hole_range_mm
        self.hole_yaw_range_rad = np.deg2rad(hole_yaw_range_deg)
        self.impedance = impedance
        self.physics_steps = round(self.control_period_s / sim.timestep_s)
        self.action_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.observation_space = spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32)

    def set_clearance(self, clearance_mm: float) -> None:
        """The hole's clearance per side (mm) from the next reset on."""
        _check_range("clearance_mm", clearance_mm, 0.0, PEG_HALF_MM, low_open=True)
        self.geometry = HoleGeometry(
            PEG_HALF_MM + clearance_mm,
            HOLE_DEPTH_MM,
            self.chamfer_mm,
            FIXTURE_HALF_MM,
            FIXTURE_TOP_Z_M * 1000.0,
        )

    # ------------------------------------------------------------------ episode setup
    def build(self) -> None:
        """Peg friction; the fixture is placed in :meth:`reset_task` (its pose is random)."""
        self.tool_link = self.sim.link_index(self.robot.name, PEG.name)
        self.sim.change_dynamics(self.robot.name, self.tool_link, lateralFriction=1.0)

    def reset_task(self) -> None:
        """Draw the hole pose and its nominal error, start the arm above the nominal hole."""
        rng = self.np_random
        r, e = self.hole_range_mm / 1000.0, self.position_error_mm / 1000.0
        yaw = rng.uniform(-self.hole_yaw_range_rad, self.hole_yaw_range_rad)
        true_xy = np.asarray(HOLE_CENTRE_M) + rng.uniform(-r, r, 2)
        self.hole_true_m = np.r_[true_xy, FIXTURE_TOP_Z_M]
        self.hole_nominal_m = self.hole_true_m + np.r_[rng.uniform(-e, e, 2), 0.0]
        c, s = np.cos(yaw), np.sin(yaw)
        self.to_world = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        self.sim.create_compound(
            "fixture",
            self.geometry.parts(),
            self.hole_true_m,
            quat_from_euler(0.0, 0.0, yaw),
            lateral_friction=FRICTION,
        )
        offset = np.r_[
            rng.uniform(-START_OFFSET_MM, START_OFFSET_MM, 2), rng.uniform(*START_HEIGHT_MM)
        ]
        self._start_robot(self._nominal_to_world_m(offset), quat_from_euler(np.pi, 0.0, yaw))

    def _start_robot(self, start_m: np.ndarray, orientation: np.ndarray) -> None:
        robot = self.robot
        q = robot.ik(start_m, orientation)
        for _ in range(10):  # teleport-and-refine; the controller removes the rest
            robot.reset_joints(q)
            q = robot.ik(start_m, orientation)
        robot.reset_joints(q)
        # The set-point starts where the TCP is (IK leaves a few µm), square to the hole.
        self.controller = self.impedance(robot, self.gains, extra_joints=[self.tool_link])
        self.controller.reset(orientation)
        self.sensor = WristFTSensor(
            self.sim, robot.name, self.tool_link, self.sensor_spec, self.np_random
        )
        for substep in range(SETTLE_STEPS):
            self.before_physics_step(substep)
            self.sim.step()
        self.sim.set_contact_breaking_threshold(DEFAULT_CONTACT_BREAKING_THRESHOLD)
        self._sample_sensor()
        self.sensor.tare()
        self.elapsed_s = 0.0
        self.state = self._measure(None)
        self.setpoint_mm = self._world_to_nominal_mm(self.controller.setpoint_m)
        self._potential = self._shaping_potential()

    # ------------------------------------------------------------------ control
    def apply_action(self, action: np.ndarray) -> None:
        """Move the impedance set-point by up to 1 mm per axis in the nominal hole frame."""
        action = np.asarray(action, dtype=float)
        if not np.isfinite(action).all():  # a broken policy output moves nothing
            action = np.zeros(3)
        step_mm = np.clip(action, -1.0, 1.0) * MAX_STEP_MM
        setpoint_mm = np.clip(self.setpoint_mm + step_mm, *SETPOINT_BOX_MM)
        lead_mm = _clip_norm(setpoint_mm - self.state.tcp_nominal_mm, SETPOINT_LEASH_MM)
        self.setpoint_mm = self.state.tcp_nominal_mm + lead_mm
        self.controller.setpoint_m = self._nominal_to_world_m(self.setpoint_mm)
        self.controller.update_model()

    def before_physics_step(self, substep: int) -> None:
        """The impedance law runs at the physics rate; the wrist sensor samples with it.

        The controller's joint read (before step k + 1) holds the sensor's reaction wrench
        of step k; the last step of a period is sampled in :meth:`compute_reward_terms`.
        """
        if substep == 0:
            self.sim.set_contact_breaking_threshold(CONTACT_BREAKING_THRESHOLD)
        self.controller.apply()
        if substep > 0:
            self.sensor.add_sample(self.controller.last_read[-1][2])

    def _sample_sensor(self) -> None:
        """The sensor's sample of the present state, from the robot's shared joint reading."""
        self.sensor.add_sample(self.robot.joint_reading()[-1][2])

    def after_physics_step(self, substep: int) -> None:
        """After the period's last step, give other cells Bullet's default back."""
        if substep == self.physics_steps - 1:
            self.sim.set_contact_breaking_threshold(DEFAULT_CONTACT_BREAKING_THRESHOLD)

    # ------------------------------------------------------------------ state and reward
    def _measure(self, previous: PegState | None) -> PegState:
        # The TCP frame is the tool's (and the sensor's) frame moved along the tool axis.
        tcp_m, quat, velocity_m_s, _ = self.robot.tcp_state()
        # Row vectors times to_world: each row expressed in the hole frame.
        rows = np.array([tcp_m - self.hole_nominal_m, tcp_m - self.hole_true_m, velocity_m_s])
        nominal, true, velocity = (rows @ self.to_world) * 1000.0
        sensor_to_nominal = self.to_world.T @ rotation_matrix(quat)
        state = PegState(
            tcp_nominal_mm=nominal,
            tcp_true_mm=true,
            velocity_mm_s=velocity,
            wrench=contact_wrench(self.sensor.reading, sensor_to_nominal),
        )
        state.depth_mm = max(0.0, -float(state.tcp_true_mm[2]))
        state.step_peak_force_n = self.sensor.peak_force_n
        if previous is not None:
            state.max_depth_mm = max(previous.max_depth_mm, state.depth_mm)
            state.peak_force_n = max(previous.peak_force_n, state.step_peak_force_n)
            state.inserted_at_s = previous.inserted_at_s
        state.damaged = state.peak_force_n > self.force_limit_n
        if state.inserted_at_s is None and not state.damaged and state.depth_mm >= SUCCESS_DEPTH_MM:
            state.inserted_at_s = self.elapsed_s
        return state

    def compute_reward_terms(self) -> dict[str, float]:
        """Close the sensor's period, update the peg state and score the step."""
        self._sample_sensor()
        self.sensor.end_period()
        self.elapsed_s += self.control_period_s
        self.state = self._measure(self.state)
        potential = self._shaping_potential()
        shaping = {name: potential[name] - self._potential[name] for name in potential}
        self._potential = potential
        soft_n = SOFT_FORCE_FRACTION * self.force_limit_n
        excess = (self.state.step_peak_force_n - soft_n) / (self.force_limit_n - soft_n)
        return {
            **shaping,
            "force_excess": -0.2 * min(max(excess, 0.0), 1.0) - 10.0 * self.state.damaged,
            "success": 10.0 if self.is_success() else 0.0,
        }

    def _shaping_potential(self) -> dict[str, float]:
        x, y, z = (float(v) for v in self.state.tcp_true_mm)
        above = max(z, 0.0)  # inside the hole the mouth has been reached
        return {
            "approach": -math.tanh(math.sqrt(x * x + y * y + above * above) / 20.0),
            "alignment": -math.tanh(math.hypot(x, y) / 2.0),
            "depth": 2.0 * min(self.state.depth_mm, SUCCESS_DEPTH_MM) / SUCCESS_DEPTH_MM,
        }

    def is_success(self) -> bool:
        """Inserted to ≥ 25 mm without ever exceeding the force limit."""
        return self.state.inserted_at_s is not None and not self.state.damaged

    def is_terminal(self) -> bool:
        """Inserted, or the part is damaged."""
        return self.is_success() or self.state.damaged

    # ------------------------------------------------------------------ observation
    def observe(self) -> np.ndarray:
        """The observation vector; fields and units in ``OBSERVATION_FIELDS``."""
        state = self.state
        obs = np.concatenate(
            [
                state.tcp_nominal_mm,
                state.velocity_mm_s,
                state.wrench,
                self.setpoint_mm - state.tcp_nominal_mm,
                [self.elapsed_s / self.episode_time_s],
            ]
        )
        return np.clip(obs.astype(np.float32), OBS_LOW, OBS_HIGH)

    def step_figures(self) -> dict[str, float]:
        """Depth now (mm), peak contact force so far (N), damaged flag."""
        return {
            "insertion_depth_mm": self.state.depth_mm,
            "peak_force_n": self.state.peak_force_n,
            "damaged": float(self.state.damaged),
        }

    def episode_figures(self) -> dict[str, float]:
        """Step figures, the deepest insertion, the time to insert (s) and the conditions.

        ``time_to_insert_s`` is censored at the time limit when the peg never got in. The
        episode's conditions: ``position_error_mm``, the drawn horizontal distance between the
        nominal and the true hole (mm), and the hole's ``clearance_mm`` per side.
        """
        inserted = self.state.inserted_at_s
        nominal_error_m = self.hole_nominal_m[:2] - self.hole_true_m[:2]
        return {
            **self.step_figures(),
            "max_depth_mm": self.state.max_depth_mm,
            "time_to_insert_s": self.episode_time_s if inserted is None else inserted,
            "lateral_error_mm": float(np.hypot(*self.state.tcp_true_mm[:2])),
            "position_error_mm": 1000.0 * float(np.hypot(*nominal_error_m)),
            "clearance_mm": self.geometry.half_width_mm - PEG_HALF_MM,
        }

    # ------------------------------------------------------------------ frames
    def _world_to_nominal_mm(self, world_m: np.ndarray) -> np.ndarray:
        return self.to_world.T @ (world_m - self.hole_nominal_m) * 1000.0

    def _nominal_to_world_m(self, nominal_mm: np.ndarray) -> np.ndarray:
        return self.hole_nominal_m + self.to_world @ nominal_mm / 1000.0


def _fields(names: str, unit: str, bound: float, doc: str) -> list[dict[str, Any]]:
    return [
        {"name": f"{name}", "unit": unit, "low": -bound, "high": bound, "doc": f"{doc}, {name[-1]}"}
        for name in names.split()
    ]


# Bounds are far outside anything a sane episode reaches; observations are clipped to them.
OBSERVATION_FIELDS: list[dict[str, Any]] = [
    *_fields("tcp_x tcp_y tcp_z", "mm", 1000.0, "peg tip relative to the nominal hole mouth"),
    *_fields("velocity_x velocity_y velocity_z", "mm/s", 5000.0, "peg tip velocity"),
    *_fields("force_x force_y force_z", "N", 1000.0, "wrist sensor: contact force on the peg"),
    *_fields("torque_x torque_y torque_z", "N*m", 100.0, "wrist sensor: contact moment about it"),
    *_fields(
        "setpoint_lead_x setpoint_lead_y setpoint_lead_z",
        "mm",
        100.0,
        "impedance set-point minus peg tip",
    ),
    {
        "name": "time_fraction",
        "unit": "1",
        "low": 0.0,
        "high": 1.0,
        "doc": "elapsed time over the 15 s time limit",
    },
]
OBS_LOW = np.array([field["low"] for field in OBSERVATION_FIELDS], dtype=np.float32)
OBS_HIGH = np.array([field["high"] for field in OBSERVATION_FIELDS], dtype=np.float32)


def _check_range(name: str, value: float, low: float, high: float, low_open: bool = False) -> None:
    above_low = value > low if low_open else value >= low
    if not (above_low and value < high):  # also refuses NaN
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}), got {value}")


def _clip_norm(vector: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector if norm <= limit else vector * (limit / norm)
