"""The vision sorting task: parts, pick-and-place cycle, reward terms and success."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from robocell.envs.core import Task
from robocell.envs.energy import EnergyMeter
from robocell.envs.robot import Robot
from robocell.envs.sim import Sim, quat_from_euler, rotation_matrix
from robocell.envs.sim_types import Light
from robocell.envs.vision.camera import RenderClient
from robocell.envs.vision.pick_grid import PickGrid
from robocell.envs.vision.pick_place import TIMING, ArmPlanner, joint_move
from robocell.envs.vision.scene import (
    BIN_INNER_HALF_M,
    BIN_SLOTS_M,
    BIN_Y_M,
    FIELD_M,
    MAX_PARTS,
    PART_HALF_M,
    PART_MASS_KG,
    PART_TOP_M,
    SUCTION_CUP,
    TABLE_TOP_M,
    TRAY_CENTRE_M,
    TRAY_HALF_M,
    TRAY_RGB,
    Appearance,
    base_rgb,
    bin_boxes,
    draw_parts,
)

# Physics at 60 Hz: resting parts sleep and the bin floors are thick, so nothing sinks
# (at 30 Hz parts sink into floors); it halves the cost of a cycle against 120 Hz.

PHYSICS_STEP_S = 1.0 / 60.0
TRAVEL_HEIGHT_M = 0.21  # TCP height for moves: a held part clears the 60 mm bin walls
PICK_HEIGHT_M = PART_TOP_M + 0.0005  # the cup stops half a millimetre above a part
TOUCH_GAP_M = 0.003  # a bellows cup seals on a face within 3 mm of its lip
SEAL_MARGIN_M = 0.005  # the cup's centre must lie this far inside the top face's edges
REWARD_WEIGHTS = {"correct": 1.0, "scrap": -0.5, "escape": -2.0, "empty_pick": -0.2}
STATE_FIELDS: list[dict[str, Any]] = [
    {"name": "attempts_left", "unit": "1", "doc": "attempts left / attempt budget"},
    {"name": "last_pick_empty", "unit": "1", "doc": "1 when the last pick held nothing"},
]
ACTION_MODES = ("grid", "continuous")
BINS = ("ok", "ng")  # bin order of the grid action: index // (rows · cols)
CONTINUOUS_FIELDS: list[dict[str, Any]] = [
    {
        "name": "pick_x",
        "unit": "mm",
        "scale": 150.0,
        "doc": "pick point along world x (away from the robot) from the tray centre, "
        "-150 … 150 mm; output × 150 mm",
    },
    {
        "name": "pick_y",
        "unit": "mm",
        "scale": 150.0,
        "doc": "pick point along world y (to the robot's left) from the tray centre, "
        "-150 … 150 mm; output × 150 mm",
    },
    {"name": "bin", "unit": "1", "doc": "place bin: > 0 the NG bin, <= 0 the OK bin (-1 … 1)"},
]
# No action is neutral for a pick: a faulted row's pick is not executed at all.
SAFE_ACTION_DESCRIPTION = "none: do not execute a faulted row's pick (the cell waits)"
GRID_FIELDS: list[dict[str, Any]] = [
    {
        "name": "pick_cell",
        "unit": "1",
        "doc": "pick-and-place command: index bin*rows*cols + row*cols + col of the "
        "image-aligned pick grid (action.grid gives each cell's world point, m, and the "
        "bins), 0 … rows*cols*bins - 1",
    },
]


class VisionSortTask(Task):
    """Camera-guided sorting of good and defective parts; see :class:`VisionSortEnv`."""

    control_period_s = sum(TIMING.steps(PHYSICS_STEP_S)) * PHYSICS_STEP_S
    episode_time_s = (MAX_PARTS + 2) * control_period_s
    reward_term_names = tuple(REWARD_WEIGHTS)

    def __init__(
        self,
        sim: Sim,
        robot: Robot,
        render_client: RenderClient,
        planner: ArmPlanner,
        parts: tuple[int, int] = (3, 5),
        defect_rate: float = 0.3,
        look: Appearance | None = None,
        grid: PickGrid | None = None,
    ) -> None:
        super().__init__(sim, robot)
        self.camera = render_client.camera
        self.grid = grid  # None: the continuous pick point
        self.render_client = render_client
        self.planner = planner
        self.part_range = parts
        self.defect_rate = defect_rate
        self.look = look or Appearance()
        self.meter = EnergyMeter()  # the env hands over its own meter
        size = self.camera.size_px
        self.observation_space = spaces.Dict(
            {
                "image": spaces.Box(0, 255, (render_client.channels, size, size), np.uint8),
                "state": spaces.Box(0.0, 1.0, (len(STATE_FIELDS),), np.float32),
            }
        )
        self.action_space: spaces.Space = (
            spaces.Box(-1.0, 1.0, (3,), np.float32)
            if grid is None
            else spaces.Discrete(grid.n_actions)
        )
        self._phase_ends = np.cumsum(TIMING.steps(sim.timestep_s))
        self._home_q = planner.solve((*TRAY_CENTRE_M[:2], TRAVEL_HEIGHT_M))
        x = TRAY_CENTRE_M[0]
        self._bin_q = {
            name: [planner.solve((x + dx, y + dy, TRAVEL_HEIGHT_M)) for dx, dy in BIN_SLOTS_M]
            for name, y in BIN_Y_M.items()
        }

    # ------------------------------------------------------------------ episode setup
    def build(self) -> None:
        """The table, the tray and the two bins (static)."""
        sim, (x, y, top) = self.sim, TRAY_CENTRE_M
        self.tool_link = sim.link_index(self.robot.name, SUCTION_CUP.name)
        sim.create_box("table", (0.3, 0.6, TABLE_TOP_M / 2), (x, 0.0, TABLE_TOP_M / 2))
        tray_z = top - TRAY_HALF_M[2]
        sim.create_box("tray", TRAY_HALF_M, (x, y, tray_z), rgba=(*TRAY_RGB, 1.0))
        for name, bin_y in BIN_Y_M.items():
            sim.create_compound(f"bin_{name}", bin_boxes(name), (x, bin_y, TABLE_TOP_M))

    def reset_task(self) -> None:
        """Draw the parts and the look, put the arm above the tray centre."""
        rng = self.np_random
        count = int(rng.integers(self.part_range[0], self.part_range[1] + 1))
        self.parts = {p.name: p for p in draw_parts(rng, count, self.defect_rate, self.look)}
        for part in self.parts.values():
            orientation = quat_from_euler(0.0, 0.0, part.yaw_rad)
            boxes = part.visual().boxes
            self.sim.create_compound(part.name, boxes, part.position_m, orientation, PART_MASS_KG)
            self.sim.allow_sleep(part.name, asleep_now=True)  # placed at rest
        self.tray_rgba = (*self.look.jitter(TRAY_RGB, rng), 1.0)
        self.sim.set_color("tray", self.tray_rgba)
        visuals = {name: part.visual() for name, part in self.parts.items()}
        self.render_client.build(TRAY_HALF_M, self.tray_rgba, visuals, self.look.draw_light(rng))
        self.robot.reset_joints(self._home_q)
        self._q_end = self._home_q
        self.location = dict.fromkeys(self.parts, "tray")
        self.outcomes = {"correct": 0, "scrap": 0, "escape": 0, "lost": 0}
        self.attempts = self.empty_picks = 0
        self.budget = count + 2
        self.bin_counts = dict.fromkeys(BIN_Y_M, 0)
        self.suction_on = self.last_pick_empty = self.step_empty = False
        self._held: str | None = None
        self._released: str | None = None
        self._constraint: int | None = None

    # ------------------------------------------------------------------ the primitive
    def decode_action(self, action: np.ndarray | int) -> tuple[np.ndarray, str]:
        """The pick point (x, y) in metres and the bin an action asks for."""
        if self.grid is not None:
            return self.grid.decode(int(np.asarray(action).item()))
        action = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
        xy = np.asarray(TRAY_CENTRE_M[:2]) + action[:2] * FIELD_M / 2.0
        return xy, "ng" if action[2] > 0.0 else "ok"

    def encode_action(self, xy: np.ndarray, bin_name: str) -> np.ndarray:
        """The action that picks at (x, y) (m) and places into ``bin_name`` ("ok"/"ng")."""
        if self.grid is not None:
            return np.int64(self.grid.encode(xy, bin_name))
        pick = (np.asarray(xy) - np.asarray(TRAY_CENTRE_M[:2])) / (FIELD_M / 2.0)
        return np.array([*np.clip(pick, -1.0, 1.0), 1.0 if bin_name == "ng" else -1.0], np.float32)

    def apply_action(self, action: np.ndarray) -> None:
        """Plan one pick-and-place: IK once per waypoint, joint-space moves between."""
        self.pick_xy, self.bin = self.decode_action(action)
        self.attempts += 1
        self.step_empty = False
        self._q_above = self.planner.solve((*self.pick_xy, TRAVEL_HEIGHT_M))
        q_down = self.planner.solve((*self.pick_xy, PICK_HEIGHT_M), seed=self._q_above)
        q_bin = self._bin_q[self.bin][self.bin_counts[self.bin] % len(BIN_SLOTS_M)]
        waypoints = [self._q_end, self._q_above, q_down, q_down, self._q_above, q_bin, q_bin]
        steps = np.diff(self._phase_ends, prepend=0)
        arm = self.robot.arm
        moves = [
            joint_move(q0, q1, n, self.sim.timestep_s, arm.max_speed_rad_s, arm.max_accel_rad_s2)
            for q0, q1, n in zip(waypoints[:-1], waypoints[1:], steps, strict=True)
        ]
        self._targets = np.concatenate([move[0] for move in moves])
        self._velocities = np.concatenate([move[1] for move in moves])
        self._moving = np.any(self._velocities != 0.0, axis=1)  # holds keep their motor targets

    def before_physics_step(self, substep: int) -> None:
        """Switch suction at the phase boundaries and command the trajectory point."""
        if substep == self._phase_ends[0]:
            self.suction_on = True
        elif substep == self._phase_ends[4]:
            self._release()
        if substep == 0 or self._moving[substep] or self._moving[substep - 1]:
            self.robot.track(self._targets[substep], self._velocities[substep])

    def after_physics_step(self, substep: int) -> None:
        """Check the seal at the end of the seal phase; tidy up after the last step."""
        if substep == self._phase_ends[2] - 1:
            self._try_attach()
        elif substep == self._phase_ends[-1] - 1:
            if self._released is not None:
                self.sim.set_collision(self.robot.name, self._released, True, self.tool_link)
            self._released = None
            self._q_end = self._targets[-1]

    def tool_power_w(self) -> float:
        """The vacuum pump's power while suction is on."""
        return self.meter.constants.suction_pump_w if self.suction_on else 0.0

    def _try_attach(self) -> None:
        part = self._part_under_cup()
        if part is None:  # the vacuum switch reports no part: lift, then wait there
            self.suction_on = False
            self.step_empty = True
            lifted = self._phase_ends[3]
            self._targets[lifted:] = self._q_above
            self._velocities[lifted:] = 0.0
            self._moving[lifted:] = False
            return
        self.sim.wake_up(part)
        self._constraint = self.sim.attach_in_place(self.robot.name, self.tool_link, part)
        self.sim.set_collision(self.robot.name, part, False, self.tool_link)
        self._held = part

    def _part_under_cup(self) -> str | None:
        """The part whose top face the cup touches with its centre inside the seal margin."""
        tcp, _ = self.robot.tcp_pose()
        limit = PART_HALF_M[0] - SEAL_MARGIN_M
        best, best_offset = None, np.inf
        for name in self._parts_on_tray():
            if not self.sim.closest_points(self.robot.name, name, TOUCH_GAP_M, self.tool_link):
                continue
            position, orientation = self.sim.base_pose(name)
            rotation = rotation_matrix(orientation)
            local = rotation.T @ (tcp - position)
            upright = rotation[2, 2] > 0.95 and local[2] > PART_HALF_M[2] - TOUCH_GAP_M
            offset = float(np.max(np.abs(local[:2])))
            if upright and offset <= limit and offset < best_offset:
                best, best_offset = name, offset
        return best

    def _release(self) -> None:
        self.suction_on = False
        if self._constraint is not None:
            self.sim.remove_constraint(self._constraint)
            self.bin_counts[self.bin] += 1
        self._released, self._held, self._constraint = self._held, None, None

    def _parts_on_tray(self) -> list[str]:
        return [name for name, where in self.location.items() if where == "tray"]

    # ------------------------------------------------------------------ outcome
    def compute_reward_terms(self) -> dict[str, float]:
        """Score the parts that left the tray this step, and an empty pick."""
        moved = dict.fromkeys(self.outcomes, 0)
        for name in self._parts_on_tray():
            where = self._locate(name)
            if where != "tray":
                self.location[name] = where
                moved[self._outcome(name, where)] += 1
        for outcome, count in moved.items():
            self.outcomes[outcome] += count
        self.empty_picks += int(self.step_empty)
        self.last_pick_empty = self.step_empty
        counts = {**moved, "empty_pick": int(self.step_empty)}
        return {term: weight * counts[term] for term, weight in REWARD_WEIGHTS.items()}

    def _locate(self, name: str) -> str:
        position, _ = self.sim.base_pose(name)
        for bin_name, bin_y in BIN_Y_M.items():
            offset = position[:2] - (TRAY_CENTRE_M[0], bin_y)
            if np.all(np.abs(offset) <= BIN_INNER_HALF_M):
                return bin_name
        offset = position[:2] - TRAY_CENTRE_M[:2]
        on_tray = np.all(np.abs(offset) <= TRAY_HALF_M[:2]) and position[2] > TRAY_CENTRE_M[2]
        return "tray" if on_tray else "lost"

    def _outcome(self, name: str, where: str) -> str:
        if where == "lost":
            return "lost"
        if self.parts[name].defective:
            return "correct" if where == "ng" else "escape"
        return "correct" if where == "ok" else "scrap"

    def is_success(self) -> bool:
        """Every part in its right bin (within the attempt budget, which ends the episode)."""
        return self.outcomes["correct"] == len(self.parts)

    def is_terminal(self) -> bool:
        """The tray is empty or the attempt budget (parts + 2) is spent."""
        return not self._parts_on_tray() or self.attempts >= self.budget

    # ------------------------------------------------------------------ observation
    def observe(self) -> dict[str, np.ndarray]:
        """The camera image and the state vector (fields in ``STATE_FIELDS``)."""
        self.render_client.sync({name: self.sim.base_pose(name) for name in self._parts_on_tray()})
        state = [(self.budget - self.attempts) / self.budget, float(self.last_pick_empty)]
        return {"image": self.render_client.render(), "state": np.asarray(state, np.float32)}

    def step_figures(self) -> dict[str, float]:
        """Sorting figures so far, per part that was on the tray at the start."""
        n = float(len(self.parts))
        return {
            "sort_accuracy": self.outcomes["correct"] / n,
            "escape_rate": self.outcomes["escape"] / n,
            "scrap_rate": self.outcomes["scrap"] / n,
            "lost_rate": self.outcomes["lost"] / n,
            "picks_per_part": self.attempts / n,
            "empty_picks": float(self.empty_picks),
            "energy_per_part_j": self.meter.total_j / n,
            "cycle_time_per_part_s": self.attempts * self.control_period_s / n,
            "parts": n,
            "defective_parts": float(sum(p.defective for p in self.parts.values())),
        }

    def episode_figures(self) -> dict[str, float]:
        """Sorting figures plus the episode's look: light tilt and level, colour jitter.

        ``light_tilt_deg``: the light's angle off vertical (deg); ``light_level``: ambient plus
        diffuse level over the nominal light's (1 = nominal); ``colour_jitter``: the root mean
        square of the drawn offsets of the tray's and the parts' colour channels (0–1).
        """
        light, nominal = self.render_client.light, Light()
        offsets = [np.subtract(self.tray_rgba[:3], TRAY_RGB)]
        offsets += [np.subtract(p.rgb, base_rgb(p.defect)) for p in self.parts.values()]
        return {
            **self.step_figures(),
            "light_tilt_deg": float(np.degrees(np.arccos(np.clip(light.direction[2], -1, 1)))),
            "light_level": (light.ambient + light.diffuse) / (nominal.ambient + nominal.diffuse),
            "colour_jitter": float(np.sqrt(np.mean(np.square(offsets)))),
        }
