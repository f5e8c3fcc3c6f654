"""The vision sorting cell: ``robocell/VisionSort-v1``.

An overhead camera sees a tray of parts, some defective; each env step is one whole
pick-and-place cycle run in physics (see :class:`VisionSortEnv`). The scene lives in
:mod:`robocell.envs.vision_scene`, the camera in :mod:`robocell.envs.camera`, the pick over
image positions in :mod:`robocell.envs.pick_grid`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from robocell.envs.camera import OverheadCamera, RenderClient
from robocell.envs.core import CellEnv, Task
from robocell.envs.energy import EnergyMeter
from robocell.envs.pick_grid import PickGrid
from robocell.envs.pick_place import TIMING, ArmPlanner, joint_move
from robocell.envs.robot import KukaIiwa
from robocell.envs.sim import Sim, quat_from_euler, rotation_matrix
from robocell.envs.vision_scene import (
    BIN_INNER_HALF_M,
    BIN_SLOTS_M,
    BIN_Y_M,
    CAMERA_HEIGHT_M,
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
    {"name": "pick_x", "unit": "1", "doc": "pick x from the tray centre / 150 mm"},
    {"name": "pick_y", "unit": "1", "doc": "pick y from the tray centre / 150 mm"},
    {"name": "bin", "unit": "1", "doc": "> 0: NG bin, <= 0: OK bin"},
]
GRID_FIELDS: list[dict[str, Any]] = [
    {
        "name": "pick_cell",
        "unit": "1",
        "doc": "bin*rows*cols + row*cols + col of the image-aligned pick grid (action.grid)",
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
        robot: KukaIiwa,
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
        moves = [
            joint_move(q0, q1, n, self.sim.timestep_s)
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


class VisionSortEnv(CellEnv):
    """Sort good and defective parts from a tray into two bins, guided by an overhead camera.

    ## Description
    A KUKA LBR iiwa 14 with a suction cup stands before a tray holding 3–5 parts
    (40 × 40 × 20 mm blocks) at random, non-touching poses. Each part is defective with
    probability ``defect_rate``: either a dark mark (12 mm square) on its top face or a
    discoloured (heat-tinted, corroded) body. An overhead camera (84 × 84 RGB by default)
    sees the tray; the policy must find the parts in the image, judge each one and put it
    into the OK bin (the robot's left) or the NG bin (its right). Every env step is a whole
    pick-and-place cycle run in physics (2.9 s at 60 Hz): move above the pick point,
    descend, seal, lift, carry to the bin, release. The cup holds a part only when suction
    is on and the cup touches the part's top face (within 3 mm) with its centre at least
    5 mm inside the face's edges; otherwise the pick comes up empty and the arm waits above
    the pick point. Lighting and colours are randomised every episode.

    ## Action Space
    ``action_mode="grid"`` (the default): ``Discrete(G · G · 2)``, a pick over image
    positions. The camera image is cut into a G × G grid of cells (G = ``grid_size``,
    default 2 × ``image_size`` = 168: a cell is 1.74 mm of tray), aligned with the image's
    rows and columns; the action index is ``bin · G² + row · G + col`` with bin 0 = OK,
    1 = NG, row 0 the image's top row (far edge, +x) and col 0 its left column (+y). The
    pick point is where the camera ray through the cell's centre meets the plane of the
    parts' top faces (:class:`robocell.envs.pick_grid.PickGrid`; ``env.action_grid`` gives
    its rows, cols, bins and the x and y ranges across the image, which the bundle manifest
    carries as ``action.grid``). A fully-convolutional policy scores every cell and picks
    the best one.

    ``action_mode="continuous"``: ``Box(-1, 1, (3,), float32)``, one regressed pick point,
    x (away from the robot) and y (to its left), each × 150 mm from the tray centre (the
    camera's field); and the bin, > 0 NG, ≤ 0 OK.

    Either way IK runs once per waypoint (above the part, on it, above the bin slot);
    between waypoints the joints move in joint space at their rated speeds.

    ## Observation Space
    ``Dict(image=Box(0, 255, (3, 84, 84), uint8), state=Box(0, 1, (2,), float32))``. The
    image is channel-first RGB (a 4th channel with ``depth=True``: height above the tray in
    mm, 0–255). Image rows run from the far edge of the tray (+x) to the near edge, columns
    from the robot's left (+y) to its right. ``state`` (``STATE_FIELDS``): attempts left over
    the attempt budget, and whether the last pick came up empty (the vacuum switch). The
    state holds no part positions or classes.

    ## Rewards
    Per step, summed; each term is in ``info["reward/<name>"]``. The part terms count the
    parts (unit: parts) that left the tray this step — one per cycle, as a rule:
    - ``correct``: weight +1 per part in its right bin; 0 … +1 per step, +5 per episode.
    - ``scrap``: weight −0.5 per good part put into the NG bin; −0.5 … 0 per step.
    - ``escape``: weight −2 per defective part put into the OK bin (the costly mistake);
      −2 … 0 per step.
    - ``empty_pick``: weight −0.2 per pick (unit: picks) in which the cup held nothing;
      −0.2 or 0 per step.
    - ``energy``: −λ · electrical energy of the step (J): joint drives, 20 W controller
      standby and the 25 W vacuum pump while it runs; λ = ``energy_weight``, default
      5e-4 J⁻¹. A cycle costs 115–220 J (about 210 J with a part): −0.11 … −0.06 per step.

    ## Starting State
    Part count uniform in ``parts``; part centres uniform within ±110 mm of the tray centre,
    at least 70 mm apart, yaw uniform; defects drawn independently; light direction, levels
    and colour and the part and tray colours jittered (see ``Appearance``). The TCP starts
    120 mm above the tray centre, at rest.

    ## Episode End
    Terminated when no part is left on the tray or the attempt budget (parts + 2 picks) is
    spent; truncated at 7 steps or on a physics fault. Success: every part in its right bin.
    Figures in ``info`` and ``episode_metrics``, per part that was on the tray:
    ``sort_accuracy``, ``escape_rate``, ``scrap_rate``, ``lost_rate`` (knocked off the tray),
    ``picks_per_part``, ``energy_per_part_j``, ``cycle_time_per_part_s``; and the counts
    ``empty_picks``, ``parts``, ``defective_parts``.

    ## Arguments
    ``energy_weight`` (λ, J⁻¹), ``parts`` (min, max count, 1–5), ``defect_rate`` (0–1),
    ``action_mode`` (``"grid"`` or ``"continuous"``), ``grid_size`` (G, cells per image
    side; default 2 × ``image_size``), ``image_size`` (pixels, square), ``depth`` (add the
    depth channel), ``light_tilt_deg``,
    ``light_level_jitter``, ``colour_jitter`` (0 turns each randomisation off),
    ``render_mode`` (None or "rgb_array": an oblique view of the whole cell).

    ## Version History
    - v1: the action is a pick over image positions (``Discrete(G · G · 2)``) by default;
      a single regressed pick point averages between parts and picks empty tray. The v0
      action stays available as ``action_mode="continuous"``.
    - v0: initial release (continuous pick point and bin).
    """

    observation_fields: ClassVar[dict[str, list[dict[str, Any]]]] = {"state": STATE_FIELDS}

    def __init__(
        self,
        energy_weight: float = 5e-4,
        parts: tuple[int, int] | list[int] = (3, 5),
        defect_rate: float = 0.3,
        action_mode: str = "grid",
        grid_size: int | None = None,
        image_size: int = 84,
        depth: bool = False,
        light_tilt_deg: float = 35.0,
        light_level_jitter: float = 0.2,
        colour_jitter: float = 0.05,
        render_mode: str | None = None,
    ) -> None:
        low, high = (int(n) for n in parts)
        if not 1 <= low <= high <= MAX_PARTS:
            raise ValueError(f"parts must be (min, max) with 1 <= min <= max <= 5, got {parts}")
        if not 0.0 <= defect_rate <= 1.0:
            raise ValueError(f"defect_rate must be in [0, 1], got {defect_rate}")
        if image_size < 16:
            raise ValueError(f"image_size must be at least 16 pixels, got {image_size}")
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
        look = Appearance(light_tilt_deg, light_level_jitter, colour_jitter)
        camera = OverheadCamera(TRAY_CENTRE_M, CAMERA_HEIGHT_M, FIELD_M, image_size)
        grid = None
        if grid_size is not None and action_mode != "grid":
            raise ValueError("grid_size applies to action_mode='grid' only")
        if action_mode == "grid":
            size = 2 * image_size if grid_size is None else int(grid_size)
            grid = PickGrid.from_camera(camera, size, PART_TOP_M, BINS)
        self.action_fields = CONTINUOUS_FIELDS if grid is None else GRID_FIELDS
        sim = Sim(timestep_s=PHYSICS_STEP_S)
        render_client, planner = RenderClient(camera, depth), ArmPlanner(SUCTION_CUP)
        try:
            robot = KukaIiwa(sim, SUCTION_CUP)
            task = VisionSortTask(
                sim, robot, render_client, planner, (low, high), defect_rate, look, grid
            )
            super().__init__(sim, robot, task, energy_weight, render_mode)
        except Exception:
            for client in (sim, render_client, planner):
                client.close()
            raise
        task.meter = self.meter

    @property
    def action_grid(self) -> dict[str, Any] | None:
        """The pick grid (rows, cols, bins, x and y ranges across the image), or None."""
        return None if self.task.grid is None else self.task.grid.describe()

    def close(self) -> None:
        """Release the physics client, the camera's render client and the planner's client."""
        self.task.render_client.close()
        self.task.planner.close()
        super().close()
