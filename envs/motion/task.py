"""The transfer task: stations, the cycle of moves, brakes, reward terms and success.

See :class:`~robocell.envs.motion.env.MotionTransferEnv` for the cell as a user sees it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from ruckig import Trajectory

from robocell.cells import Robot, Sim, Task, Tool
from robocell.envs.motion.power import PowerModes
from robocell.envs.motion.trajectory import JointLimits, JointState, MovePlanner, sample

GRIPPER = Tool("gripper", length_m=0.12, size_m=0.03, shape="box", mass_kg=0.9, collision=False)
# The cycle: pick a raw part at the infeed, place it in the machine fixture, pick a finished
# part from the buffer, place it on the outfeed; the arm starts where the last cycle ended.
STATIONS = ("infeed", "machine", "buffer", "outfeed")
NOMINAL_STATIONS_M = np.array(
    [[0.55, 0.35, 0.15], [0.45, -0.40, 0.20], [0.60, -0.10, 0.12], [0.40, 0.45, 0.18]]
)
MACHINE = STATIONS.index("machine")
TOLERANCE_MM = 1.0  # every pick and place within ±1 mm of its station
DWELL_STEPS = 3  # gripper closing or opening at a station (0.3 s), the arm held still
MIN_SCALE = 0.3  # the slowest velocity scaling an action selects

MOVE, DWELL, WAIT, ENGAGING, BRAKED, RELEASING = range(6)
REWARD_TERMS = ("station", "takt", "success")
STATION_GOOD = 0.5
STATION_MISSED = -1.0
TAKT_MISSED = -10.0
SUCCESS = 10.0


class MotionTransferTask(Task):
    """A cycle of point-to-point moves between stations within a takt; see the env.

    Args:
        sim: the physics client.
        robot: the arm.
        takt_s: (min, max) of the takt drawn per episode (s), rounded to the control period.
        station_noise_mm: each station's horizontal position is drawn within ± this (mm).
        power: mode powers and brake timing.
    """

    control_period_s = 0.1
    episode_time_s = 9.0
    reward_term_names = REWARD_TERMS

    def __init__(
        self,
        sim: Sim,
        robot: Robot,
        takt_s: tuple[float, float] = (5.5, 9.0),
        station_noise_mm: float = 30.0,
        power: PowerModes | None = None,
    ) -> None:
        super().__init__(sim, robot)
        low, high = (float(t) for t in takt_s)
        if not 0.0 < low <= high <= self.episode_time_s:
            raise ValueError(f"takt_s must satisfy 0 < min <= max <= 9 s, got {takt_s}")
        if station_noise_mm < 0.0:
            raise ValueError(f"station_noise_mm must be >= 0, got {station_noise_mm}")
        self.takt_range_s = (low, high)
        self.station_noise_m = station_noise_mm / 1000.0
        self.power = power or PowerModes()
        self.planner = MovePlanner(JointLimits.from_speeds(robot.max_speed_rad_s))
        self.physics_dt_s = sim.timestep_s
        self.substeps = round(self.control_period_s / sim.timestep_s)
        self.engage_steps = round(self.power.brake_engage_s / self.control_period_s)
        self.release_steps = round(self.power.brake_release_s / self.control_period_s)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, (len(OBSERVATION_FIELDS),), np.float32)
        self.set_fixture_offsets(np.zeros(3), np.zeros(3))

    def set_fixture_offsets(self, true_m: np.ndarray, believed_m: np.ndarray) -> None:
        """Where the machine fixture really is, and where the arm believes it, off its taught
        position (world frame, m); both act from the next reset."""
        self.fixture_offset_m = np.asarray(true_m, dtype=float)
        self.believed_fixture_offset_m = np.asarray(believed_m, dtype=float)

    # ------------------------------------------------------------------ episode
    def build(self) -> None:
        """Nothing to build: the stations are poses, the world holds the robot alone."""

    def reset_task(self) -> None:
        """Draw the takt and the stations, solve their joint targets, start at the outfeed."""
        rng = self.np_random
        steps = rng.uniform(*self.takt_range_s) / self.control_period_s
        self.takt_steps = max(1, round(steps))
        shift = rng.uniform(-1.0, 1.0, (len(STATIONS), 2)) * self.station_noise_m
        taught = NOMINAL_STATIONS_M.copy()
        taught[:, :2] += shift
        self.true_stations_m = taught.copy()
        self.true_stations_m[MACHINE] += self.fixture_offset_m
        believed = taught.copy()
        believed[MACHINE] += self.believed_fixture_offset_m
        self.targets_q = [self._solve(position) for position in believed]
        starts = [self.targets_q[-1], *self.targets_q[:-1]]
        self.full_speed_moves_s = [
            self._rest_to_rest(a, b).duration for a, b in zip(starts, self.targets_q, strict=True)
        ]
        self.robot.reset_joints(self.targets_q[-1])
        self.reference = JointState.at_rest(self.targets_q[-1])
        self.station, self.phase, self.steps = 0, MOVE, 0
        self.phase_steps = 0
        self.trajectory: Trajectory | None = None
        self.trajectory_time_s = 0.0
        self.errors_mm: list[float] = []
        self.reached_error_mm: float | None = None  # the station reached this step
        self.motion_end_steps = 0
        self.braked_steps = 0
        self.scale_sum, self.moves = 0.0, 0

    def _solve(self, position_m: np.ndarray) -> np.ndarray:
        self.robot.reset_joints(self.robot.home)  # IK seed: the arm's tool-down home posture
        return self.robot.ik(position_m)

    def _rest_to_rest(
        self, start_q: np.ndarray, target_q: np.ndarray, scale: float = 1.0
    ) -> Trajectory:
        trajectory = self.planner.plan(JointState.at_rest(start_q), target_q, scale)
        if trajectory is None:
            raise RuntimeError("ruckig could not plan a move between two stations at rest")
        return trajectory

    # ------------------------------------------------------------------ control
    def apply_action(self, action: np.ndarray) -> None:
        """Switch the drives for the phase, then plan a move at its first step (the speed
        chooses its scaling, kept for the whole move) or request the brakes."""
        speed, brake = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
        self.reached_error_mm = None
        self._switch_drives()
        if self.phase == MOVE and self.trajectory is None:
            scale = MIN_SCALE + 0.5 * (speed + 1.0) * (1.0 - MIN_SCALE)
            target = self.targets_q[self.station]
            self.trajectory = self._rest_to_rest(self.reference.q, target, scale)
            self.trajectory_time_s = 0.0
            self.scale_sum += scale
            self.moves += 1
        elif self.phase == WAIT and brake > 0.0 and self._brake_pays():
            self.phase, self.phase_steps = ENGAGING, 0

    def _move_time_left_s(self) -> float:
        """Time (s) left of the current move as planned; at full speed before it starts.

        Ruckig re-planning from a state faster than reduced limits gives erratic profiles
        (moves of 30–200 s), so a move keeps the scaling of its first step.
        """
        if self.trajectory is None:
            return self.full_speed_moves_s[self.station]
        return max(self.trajectory.duration - self.trajectory_time_s, 0.0)

    def _brake_pays(self) -> bool:
        """Engaging and releasing the brakes fit into the takt with a step braked between."""
        return self.takt_steps - self.steps > self.engage_steps + self.release_steps

    def _switch_drives(self) -> None:
        # At a step's start, so that every physics step of an env step is metered in one mode.
        robot = self.robot
        if self.phase == BRAKED and not robot.torque_control:
            robot.joint_friction_nm = self.power.brake_torque_nm
            robot.enable_torque_control()
            robot.apply_torques(np.zeros(robot.n_joints))
        elif self.phase == RELEASING and robot.torque_control:
            # Drives on again: back to position control at the station the arm stands at.
            robot.torque_control = False
            robot.set_joint_targets(self.targets_q[-1])

    def before_physics_step(self, substep: int) -> None:
        """Follow the planned move, one trajectory sample per physics step."""
        if self.phase == MOVE:
            self.trajectory_time_s += self.physics_dt_s
            self.reference = sample(self.trajectory, self.trajectory_time_s)
            self.robot.track(self.reference.q, self.reference.qd)

    def after_physics_step(self, substep: int) -> None:
        """At the step's last physics step: advance the cycle."""
        if substep == self.substeps - 1:
            self.steps += 1
            self.phase_steps += 1
            self._advance()

    def _advance(self) -> None:
        if self.phase == MOVE and self.trajectory_time_s >= self.trajectory.duration:
            self.reference = JointState.at_rest(self.targets_q[self.station])
            self.phase, self.phase_steps, self.trajectory = DWELL, 0, None
        elif self.phase == DWELL and self.phase_steps >= DWELL_STEPS:
            self._reach_station()
        elif self.phase == ENGAGING and self.phase_steps >= self.engage_steps:
            self.phase, self.phase_steps = BRAKED, 0
        elif self.phase == BRAKED:
            self.braked_steps += 1
            if self.takt_steps - self.steps <= self.release_steps:
                self.phase, self.phase_steps = RELEASING, 0

    def _reach_station(self) -> None:
        tcp_m = self.robot.tcp_pose()[0]
        error_m = float(np.linalg.norm(tcp_m - self.true_stations_m[self.station]))
        self.errors_mm.append(1000.0 * error_m)
        self.reached_error_mm = 1000.0 * error_m
        self.station += 1
        self.phase, self.phase_steps = (MOVE if self.station < len(STATIONS) else WAIT), 0
        if self.phase == WAIT:
            self.motion_end_steps = self.steps

    def tool_power_w(self) -> float:
        """Drive enable power unless the brakes hold the arm, plus the gripper while it acts."""
        drives = 0.0 if self.robot.torque_control else self.power.drives_enabled_w
        return drives + (self.power.gripper_w if self.phase == DWELL else 0.0)

    # ------------------------------------------------------------------ reward and figures
    def compute_reward_terms(self) -> dict[str, float]:
        """Each station reached (+0.5 within ±1 mm, −1 outside), the takt, success at the end."""
        station, error_mm = 0.0, self.reached_error_mm
        if error_mm is not None:
            station = STATION_GOOD if error_mm <= TOLERANCE_MM else STATION_MISSED
        over = self.is_terminal()
        return {
            "station": station,
            "takt": TAKT_MISSED if over and self.station < len(STATIONS) else 0.0,
            "success": SUCCESS if over and self.is_success() else 0.0,
        }

    def is_success(self) -> bool:
        """Every station reached within ±1 mm and the cycle done within the takt."""
        done = self.station == len(STATIONS) and self.steps >= self.takt_steps
        return done and max(self.errors_mm) <= TOLERANCE_MM

    def is_terminal(self) -> bool:
        """The takt is over."""
        return self.steps >= self.takt_steps

    def observe(self) -> np.ndarray:
        """The observation vector; fields and units in ``OBSERVATION_FIELDS``."""
        state = self.robot.joint_state()
        q, qd = state.q, state.qd
        target = self.targets_q[self.station] if self.station < len(STATIONS) else q
        period = self.control_period_s
        obs = [
            (self.takt_steps - self.steps) * period,
            self._cycle_time_left_s(),
            float(len(STATIONS) - self.station),
            float(self.robot.torque_control),
            *q,
            *qd,
            *(target - q),
        ]
        return np.asarray(obs, dtype=np.float32)

    def _cycle_time_left_s(self) -> float:
        """Time (s) the rest of the cycle takes: this move as planned, the later ones at full
        speed, and the stations' dwells."""
        if self.station == len(STATIONS):
            return 0.0
        later = sum(self.full_speed_moves_s[self.station + 1 :])
        dwells = (len(STATIONS) - self.station) * DWELL_STEPS * self.control_period_s
        if self.phase == MOVE:
            now = self._move_time_left_s()
        else:
            now = -self.phase_steps * self.control_period_s  # part of this dwell is done
        return now + later + dwells

    def step_figures(self) -> dict[str, float]:
        """Stations reached and the largest position error so far (mm)."""
        return {
            "stations_reached": float(len(self.errors_mm)),
            "max_position_error_mm": max(self.errors_mm, default=0.0),
        }

    def episode_figures(self) -> dict[str, float]:
        """The step figures, the cycle's timing and the episode's takt."""
        period = self.control_period_s
        return {
            **self.step_figures(),
            "takt_s": self.takt_steps * period,
            "takt_missed": float(self.station < len(STATIONS)),
            "motion_time_s": (self.motion_end_steps or self.steps) * period,
            "braked_s": self.braked_steps * period,
            "mean_speed_scale": self.scale_sum / max(self.moves, 1),
        }


OBSERVATION_FIELDS: list[dict[str, Any]] = [
    {"name": "takt_left", "unit": "s", "doc": "time left until the takt is over"},
    {"name": "cycle_time_left", "unit": "s",
     "doc": "time the rest of the cycle takes: this move as planned, the later ones at full "
            "speed, and the stations' dwells"},
    {"name": "stations_left", "unit": "1", "doc": "stations still to reach this cycle (4 … 0)"},
    {"name": "brakes_engaged", "unit": "1", "doc": "1 while the brakes hold the arm, else 0"},
    *({"name": f"q{i + 1}", "unit": "rad", "doc": f"joint {i + 1} position"} for i in range(7)),
    *({"name": f"qd{i + 1}", "unit": "rad/s", "doc": f"joint {i + 1} speed"} for i in range(7)),
    *({"name": f"target_q{i + 1}", "unit": "rad",
       "doc": f"joint {i + 1} of the next station's target minus its position (0 when done)"}
      for i in range(7)),
]  # fmt: skip
