"""The welding task: seam, plate, process model, reward terms and success (see WeldSeamEnv)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from robocell.envs.core import Task
from robocell.envs.robot import TOOL_DOWN, Robot, Tool
from robocell.envs.sim import Sim, quat_from_euler, rotation_matrix
from robocell.envs.sim_types import BoxPart
from robocell.envs.weld.process import WeldProcess, WeldProcessSpec
from robocell.envs.weld.reward import (
    REWARD_TERMS,
    TERMINAL_POTENTIALS,
    TorchState,
    WeldRewardSpec,
    potentials,
    process_terms,
    shaping,
)
from robocell.envs.weld.seam import SHAPES, PlatePose, Seam, make_seam_points
from robocell.envs.weld.sensor import SeamSensorSpec

PLATE_HALF_MM = (170.0, 130.0, 5.0)
NOMINAL_PLATE = PlatePose(x_m=0.62, y_m=0.0, top_z_m=0.11, yaw_rad=0.0)
TORCH = Tool("torch", length_m=0.18, size_m=0.012, mass_kg=1.2, rgba=(0.75, 0.45, 0.1, 1.0))
START_HEIGHT_MM = 25.0
PREVIEW_MM = np.array([10.0, 20.0, 40.0])
LOST_LATERAL_MM = 40.0
LOST_HEIGHT_MM = 80.0
CRASH_HEIGHT_MM = 2.0
RUN_OUT_MM = 3.0
TOOL_DOWN_ROTATION = rotation_matrix(TOOL_DOWN)


class WeldSeamTask(Task):
    """Arc welding of a seam on a fixtured plate; see :class:`WeldSeamEnv`."""

    control_period_s = 0.1
    episode_time_s = 45.0
    reward_term_names = REWARD_TERMS

    def __init__(
        self,
        sim: Sim,
        robot: Robot,
        shapes: tuple[str, ...] = SHAPES,
        seam_length_mm: tuple[float, float] = (120.0, 250.0),
        pose_noise_mm: float = 20.0,
        pose_noise_deg: float = 20.0,
        calibration_error_mm: float = 3.0,
        process: WeldProcessSpec | None = None,
        sensor: SeamSensorSpec | None = None,
        max_speed_mm_s: tuple[float, float, float] = (20.0, 10.0, 10.0),
        reward: WeldRewardSpec | None = None,
    ) -> None:
        super().__init__(sim, robot)
        unknown = set(shapes) - set(SHAPES)
        if unknown or not shapes:
            raise ValueError(f"shapes must be a non-empty subset of {SHAPES}, got {shapes}")
        self.shapes = tuple(shapes)
        self.seam_length_mm = seam_length_mm
        self.pose_noise_mm = pose_noise_mm
        self.pose_noise_rad = np.deg2rad(pose_noise_deg)
        self.calibration_error_mm = calibration_error_mm
        self.process_spec = process or WeldProcessSpec()
        self.sensor = sensor or SeamSensorSpec()
        self.max_speed_mm_s = np.asarray(max_speed_mm_s, dtype=float)
        self.reward = reward or WeldRewardSpec()
        self.reward.validate()
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, (len(OBSERVATION_FIELDS),), np.float32)
        self.set_tool_offsets(np.zeros(3), np.zeros(3))

    def set_tool_offsets(self, true_m: np.ndarray, believed_m: np.ndarray) -> None:
        """Where the wire tip really is, and where the controller believes it, off the TCP.

        Both in the TCP frame (m): the torch's bend plus the stick-out's change, and its
        calibration. The seam tracker is calibrated to the believed TCP, the arc burns at
        the true tip, and the action moves the believed TCP.
        """
        self.tip_offset_m = np.asarray(true_m, dtype=float)
        self.believed_offset_m = np.asarray(believed_m, dtype=float)
        self._bent = bool(np.any(self.tip_offset_m != self.believed_offset_m))

    def _link_target(self, point_m: np.ndarray) -> np.ndarray:
        """The TCP link position that puts the believed TCP at ``point_m`` (torch down)."""
        if not np.any(self.believed_offset_m):
            return point_m
        return point_m - TOOL_DOWN_ROTATION @ self.believed_offset_m

    def _off_link(self, offset_m: np.ndarray) -> np.ndarray:
        """The world point ``offset_m`` (TCP frame) off the TCP link, now."""
        position, orientation = self.robot.tcp_pose()
        if not np.any(offset_m):
            return position
        return position + rotation_matrix(orientation) @ offset_m

    # ------------------------------------------------------------------ episode setup
    def build(self) -> None:
        """The fixture table; the plate is placed in :meth:`reset_task` (its pose is random)."""
        table_top = NOMINAL_PLATE.top_z_m - 2 * PLATE_HALF_MM[2] / 1000.0
        self.sim.create_box(
            "table",
            (0.3, 0.3, table_top / 2),
            (NOMINAL_PLATE.x_m, 0.0, table_top / 2),
            rgba=(0.35, 0.35, 0.4, 1.0),
        )

    def reset_task(self) -> None:
        """Draw the seam, the plate pose and its calibration error; start above the seam."""
        rng = self.np_random
        shape = self.shapes[rng.integers(len(self.shapes))]
        length_mm = rng.uniform(*self.seam_length_mm)
        points = make_seam_points(shape, length_mm, rng)
        self.seam_shape = shape
        self.seam = Seam(points)
        self.nominal = self._draw_nominal_pose(rng)
        self.real = self._draw_real_pose(rng)
        self._place_plate(points)
        self.process = WeldProcess(self.seam, self.process_spec)
        self.arc_on = False
        self._start_robot(rng)

    def _draw_nominal_pose(self, rng: np.random.Generator) -> PlatePose:
        dx, dy = rng.uniform(-self.pose_noise_mm, self.pose_noise_mm, 2) / 1000.0
        yaw = rng.uniform(-self.pose_noise_rad, self.pose_noise_rad)
        base = NOMINAL_PLATE
        return PlatePose(base.x_m + dx, base.y_m + dy, base.top_z_m, yaw)

    def _draw_real_pose(self, rng: np.random.Generator) -> PlatePose:
        err = self.calibration_error_mm
        dx, dy = rng.uniform(-err, err, 2) / 1000.0
        dz = rng.uniform(-err, err) / 3000.0  # height is better known than x, y
        n = self.nominal
        return PlatePose(n.x_m + dx, n.y_m + dy, n.top_z_m + dz, n.yaw_rad)

    def _place_plate(self, seam_points_mm: np.ndarray) -> None:
        real = self.real
        half = np.asarray(PLATE_HALF_MM) / 1000.0
        centre = (real.x_m, real.y_m, real.top_z_m - half[2])
        orientation = quat_from_euler(0.0, 0.0, real.yaw_rad)
        self.sim.create_box("plate", tuple(half), centre, orientation, rgba=(0.55, 0.57, 0.6, 1))
        marks = [
            BoxPart((0.0008, 0.0008, 0.0002), (x / 1000.0, y / 1000.0, half[2]), (0.1, 0.1, 0.1, 1))
            for x, y in seam_points_mm[:: len(seam_points_mm) // 15]
        ]
        # The seam drawn as 16 dots, for rendered videos only (PyBullet crashes on larger
        # visual shape arrays): no collision, no process effect.
        self.sim.create_compound("seam_marks", marks, centre, orientation, collision=False)

    def _start_robot(self, rng: np.random.Generator) -> None:
        start = self.nominal.to_world_m(self.seam.point_at(0.0))
        start = start + np.r_[rng.uniform(-2.0, 2.0, 2), START_HEIGHT_MM] / 1000.0
        link_start = self._link_target(start)
        q = self.robot.ik(link_start)
        for _ in range(20):  # teleport-and-refine: exact start pose without dynamics
            self.robot.reset_joints(q)
            q = self.robot.ik(link_start)
        self.robot.reset_joints(q)
        self.target_m = self._off_link(self.believed_offset_m)
        self.previous_tcp_m = self.target_m.copy()
        self._update_state()
        self.travel_speed_mm_s = 0.0
        self.potentials = self._potentials_now()

    # ------------------------------------------------------------------ control
    def apply_action(self, action: np.ndarray) -> None:
        """TCP velocity in the nominal seam frame (travel, lateral, up) and arc on/off."""
        action = np.clip(action, -1.0, 1.0)
        tangent, normal = self.seam.frame_at(self.progress_mm)
        velocity_mm = action[:3] * self.max_speed_mm_s
        plate_dir = np.r_[velocity_mm[0] * tangent + velocity_mm[1] * normal, velocity_mm[2]]
        step_m = self.nominal.direction_to_world(plate_dir) * self.control_period_s / 1000.0
        tcp = self.tcp_m
        # The set-point may lead the TCP by at most 5 mm: no wind-up when the arm lags.
        self.target_m = tcp + _clip_norm(self.target_m + step_m - tcp, 0.005)
        self.arc_on = bool(action[3] > 0.0) and self.standoff_mm < self.process_spec.arc_max_mm
        link_target = self._link_target(self.target_m)
        self.robot.set_joint_targets(self.robot.ik(link_target, TOOL_DOWN, iterations=20))

    def tool_power_w(self) -> float:
        """Arc power while the arc burns."""
        return self.process_spec.arc_power_w if self.arc_on else 0.0

    # ------------------------------------------------------------------ state and process
    def _update_state(self) -> None:
        # tcp_m: the believed TCP (the controller's frame and the tracker's); tip_m: the
        # wire tip, where the arc burns. They differ only when the calibration is off.
        self.tcp_m = self._off_link(self.believed_offset_m)
        self.tip_m = self._off_link(self.tip_offset_m) if self._bent else self.tcp_m
        nominal_mm = self.nominal.to_plate_mm(self.tcp_m)
        self.real_tcp_mm = self.real.to_plate_mm(self.tip_m)
        s, lateral = self.seam.project(np.stack([nominal_mm[:2], self.real_tcp_mm[:2]]))
        self.progress_mm, self.nominal_lateral_mm = float(s[0]), float(lateral[0])
        self.real_progress_mm, self.real_lateral_mm = float(s[1]), float(lateral[1])
        self.height_mm = float(nominal_mm[2])
        self.standoff_mm = float(self.real_tcp_mm[2])
        self.sensed = (self.real_progress_mm, self.real_lateral_mm, self.standoff_mm)
        if self._bent:  # the tracker sees the seam from the believed TCP
            sensed_mm = self.real.to_plate_mm(self.tcp_m)
            s, lateral = self.seam.project(sensed_mm[None, :2])
            self.sensed = (float(s[0]), float(lateral[0]), float(sensed_mm[2]))

    def compute_reward_terms(self) -> dict[str, float]:
        """Run the process model over the step, then score it (see WeldSeamEnv and
        :mod:`robocell.envs.weld.reward`)."""
        self.previous_tcp_m = self.tcp_m
        previous = self.real.to_plate_mm(self.tip_m)
        previous_progress_mm = self.real_progress_mm
        self._update_state()
        step = self.process.advance(previous, self.real_tcp_mm, self.arc_on, self.control_period_s)
        self.last_step = step
        self.travel_speed_mm_s = (
            self.real_progress_mm - previous_progress_mm
        ) / self.control_period_s
        ending = self.ending()
        after = TERMINAL_POTENTIALS if ending else self._potentials_now()
        terms = process_terms(
            step,
            self.reward,
            success_end=ending is not None and self.is_success(),
            aborted=ending in ("crash", "lost"),
        )
        terms.update(shaping(self.potentials, after, self.reward.gamma))
        self.potentials = after  # Φ(s) per shaping term, 0 once terminal
        return terms

    def _potentials_now(self) -> dict[str, float]:
        state = TorchState(
            self.standoff_mm, self.real_lateral_mm, self.travel_speed_mm_s, self.arc_on
        )
        return potentials(state, self.reward, self.process_spec)

    def is_success(self) -> bool:
        """≥ 95 % of the seam welded good and ≤ 2 mm of defects."""
        return self.process.good_fraction >= 0.95 and self.process.defect_mm <= 2.0

    def is_terminal(self) -> bool:
        """The torch ran past the seam end, got lost or touched the plate."""
        return self.ending() is not None

    def ending(self) -> str | None:
        """Why the episode ends now: ``crash``, ``lost``, ``past_end``, or None (it goes on)."""
        if self.standoff_mm < CRASH_HEIGHT_MM:
            return "crash"
        if abs(self.nominal_lateral_mm) > LOST_LATERAL_MM or self.height_mm > LOST_HEIGHT_MM:
            return "lost"
        if self.progress_mm >= self.seam.length_mm + RUN_OUT_MM:
            return "past_end"
        return None

    # ------------------------------------------------------------------ observation
    def observe(self) -> np.ndarray:
        """The observation vector; fields and units in ``OBSERVATION_FIELDS``."""
        rng, sensor = self.np_random, self.sensor
        tangent, normal = self.seam.frame_at(self.progress_mm)
        v_world = (self.tcp_m - self.previous_tcp_m) * 1000.0 / self.control_period_s
        v_plate = _world_to_plate_dir(self.nominal, v_world)
        v_seam = [v_plate[:2] @ tangent, v_plate[:2] @ normal, v_plate[2]]
        progress_mm, lateral_mm, standoff_mm = self.sensed
        seen = -sensor.look_ahead_mm <= progress_mm <= self.seam.length_mm
        valid = seen and abs(lateral_mm) <= sensor.fov_mm
        lateral = -lateral_mm + rng.normal(0.0, sensor.noise_mm) if valid else 0.0
        standoff = min(standoff_mm + rng.normal(0.0, sensor.noise_mm), sensor.max_range_mm)
        obs = [
            self.progress_mm,
            self.seam.length_mm - self.progress_mm,
            self.nominal_lateral_mm,
            self.height_mm,
            *v_seam,
            lateral,
            standoff,
            float(valid),
            float(self.arc_on),
            *self.seam.heading_change_rad(self.progress_mm, PREVIEW_MM),
            self.process.good_fraction,
            self.process.defect_mm,
        ]
        return np.asarray(obs, dtype=np.float32)

    def step_figures(self) -> dict[str, float]:
        """Process figures so far."""
        return self.process.figures()

    def episode_figures(self) -> dict[str, float]:
        """Process figures plus the episode's conditions: seam shape and length, calibration.

        ``seam_shape_index`` is the shape's index in ``SHAPES`` (0 straight, 1 arc,
        2 s_curve); ``calibration_error_mm`` the drawn horizontal distance between the plate's
        real and nominal pose (mm).
        """
        offset_m = (self.real.x_m - self.nominal.x_m, self.real.y_m - self.nominal.y_m)
        return {
            **self.process.figures(),
            "seam_shape_index": float(SHAPES.index(self.seam_shape)),
            "seam_length_mm": self.seam.length_mm,
            "calibration_error_mm": 1000.0 * float(np.hypot(*offset_m)),
        }


OBSERVATION_FIELDS: list[dict[str, Any]] = [
    {"name": "progress", "unit": "mm", "doc": "arc length of the TCP along the nominal seam"},
    {"name": "remaining", "unit": "mm", "doc": "nominal seam length minus progress"},
    {"name": "nominal_lateral", "unit": "mm", "doc": "TCP offset left of the nominal seam"},
    {"name": "height", "unit": "mm", "doc": "TCP height above the nominal plate surface"},
    {"name": "velocity_travel", "unit": "mm/s", "doc": "TCP velocity along the seam"},
    {"name": "velocity_lateral", "unit": "mm/s", "doc": "TCP velocity left of the seam"},
    {"name": "velocity_up", "unit": "mm/s", "doc": "TCP velocity upwards"},
    {"name": "sensor_lateral", "unit": "mm", "doc": "seam tracker: seam left of the torch"},
    {"name": "sensor_standoff", "unit": "mm", "doc": "seam tracker: torch height above plate"},
    {"name": "sensor_valid", "unit": "1", "doc": "1 when the tracker sees the seam"},
    {"name": "arc_on", "unit": "1", "doc": "1 while the arc burns"},
    {"name": "turn_10mm", "unit": "rad", "doc": "nominal seam heading change 10 mm ahead"},
    {"name": "turn_20mm", "unit": "rad", "doc": "nominal seam heading change 20 mm ahead"},
    {"name": "turn_40mm", "unit": "rad", "doc": "nominal seam heading change 40 mm ahead"},
    {"name": "good_fraction", "unit": "1", "doc": "arc monitor: fraction of seam welded good"},
    {"name": "defect_length", "unit": "mm", "doc": "arc monitor: defective weld length"},
]


def _clip_norm(vector: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector if norm <= limit else vector * (limit / norm)


def _world_to_plate_dir(pose: PlatePose, world: np.ndarray) -> np.ndarray:
    c, s = pose.yaw_cos_sin
    return np.array([c * world[0] + s * world[1], -s * world[0] + c * world[1], world[2]])
