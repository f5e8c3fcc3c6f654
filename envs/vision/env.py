"""The vision sorting cell's env assembly: ``robocell/VisionSort-v1``.

An overhead camera sees a tray of parts, some defective; each env step is one whole
pick-and-place cycle run in physics (see :class:`VisionSortEnv`). The scene lives in
:mod:`robocell.envs.vision.scene`, the camera in :mod:`robocell.envs.vision.camera`, the
pick over image positions in :mod:`robocell.envs.vision.pick_grid`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from robocell.envs.arms import arm_spec, require_arm
from robocell.envs.core import CellEnv
from robocell.envs.robot import Robot
from robocell.envs.sim import Sim
from robocell.envs.vision.camera import OverheadCamera, RenderClient
from robocell.envs.vision.pick_grid import PickGrid
from robocell.envs.vision.pick_place import ArmPlanner
from robocell.envs.vision.plant import BELIEF_PARAMETERS, LINE_PARAMETERS
from robocell.envs.vision.scene import (
    CAMERA_HEIGHT_M,
    FIELD_M,
    MAX_PARTS,
    PART_TOP_M,
    SUCTION_CUP,
    TRAY_CENTRE_M,
    Appearance,
)
from robocell.envs.vision.task import (
    ACTION_MODES,
    BINS,
    CONTINUOUS_FIELDS,
    GRID_FIELDS,
    PHYSICS_STEP_S,
    SAFE_ACTION_DESCRIPTION,
    STATE_FIELDS,
    VisionSortTask,
)

# The tray's far corners lie 0.72 m out: the xArm 6 (0.70 m) misses a part there by 73 mm.
MIN_REACH_M = 0.75


class VisionSortEnv(CellEnv):
    """Sort good and defective parts from a tray into two bins, guided by an overhead camera.

    ## Description
    A KUKA LBR iiwa 14 (or another arm: ``robot``) with a suction cup stands before a tray
    holding 3–5 parts (40 × 40 × 20 mm blocks) at random, non-touching poses. Each part is
    defective with probability ``defect_rate``: either a dark mark (12 mm square) on its top
    face or a discoloured (heat-tinted, corroded) body. An overhead camera (84 × 84 RGB by default)
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
    parts' top faces (:class:`robocell.envs.vision.pick_grid.PickGrid`; ``env.action_grid``
    gives its rows, cols, bins and the x and y ranges across the image, which the bundle
    manifest carries as ``action.grid``). A fully-convolutional policy scores every cell and
    picks the best one. An index outside the space is an invalid action.

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
    ``empty_picks``, ``parts``, ``defective_parts``. ``episode_metrics`` adds the episode's
    look: ``light_tilt_deg`` (the light's angle off vertical, deg, 0 … ``light_tilt_deg``),
    ``light_level`` (ambient + diffuse level over the nominal light's, 1 ± ``light_level_jitter``)
    and ``colour_jitter`` (root mean square of the drawn offsets of the tray's and parts'
    colour channels, 0 … ``colour_jitter``). ``parts`` and ``defective_parts`` are conditions
    too.

    ## Arguments
    ``energy_weight`` (λ, J⁻¹), ``parts`` (min, max count, 1–5), ``defect_rate`` (0–1),
    ``action_mode`` (``"grid"`` or ``"continuous"``), ``grid_size`` (G, cells per image
    side; default 2 × ``image_size``), ``image_size`` (pixels, square), ``depth`` (add the
    depth channel), ``light_tilt_deg``, ``light_level_jitter``, ``colour_jitter`` (0 turns
    each randomisation off),
    ``render_mode`` (None or "rgb_array": an oblique view of the whole cell), ``robot`` (the
    arm: ``"iiwa"``, the default, ``"panda"`` or ``"xarm6"``; see docs/CELLS.md, "Arms").

    Plant parameters (hidden from the controller; ``configure`` changes them between
    episodes): ``camera_tilt_deg`` (deg, −10 … 10, the camera's rotation off its mount about
    the world y axis), ``camera_shift_mm`` (mm, x and y, −50 … 50 each, its shift off the
    mount), ``lamp_level`` (lamp output over nominal, 0.3 … 1.5), ``lamp_tilt_deg`` (deg,
    0 … 45, added to the drawn light tilt), ``colour_jitter`` (above: the part batch's colour
    spread, 0 … 0.25). The belief (the calibration): ``believed_camera_shift_mm`` (mm, x, y,
    z) and ``believed_camera_rotation_deg`` (deg, extrinsic x, y, z Euler angles), the camera
    pose off its mount the pick grid and the scripted sorter map the image through. The
    image is rendered through the true camera; with belief = truth = 0 the cell is as it was.

    ## Version History
    - v1: the action is a pick over image positions (``Discrete(G · G · 2)``) by default;
      a single regressed pick point averages between parts and picks empty tray. The v0
      action stays available as ``action_mode="continuous"``.
    - v0: initial release (continuous pick point and bin).
    """

    observation_fields: ClassVar[dict[str, list[dict[str, Any]]]] = {"state": STATE_FIELDS}
    safe_action_description = SAFE_ACTION_DESCRIPTION
    line_parameters = LINE_PARAMETERS
    belief_parameters = BELIEF_PARAMETERS

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
        camera_tilt_deg: float = 0.0,
        camera_shift_mm: tuple[float, float] | list[float] = (0.0, 0.0),
        lamp_level: float = 1.0,
        lamp_tilt_deg: float = 0.0,
        believed_camera_shift_mm: tuple[float, float, float] | list[float] = (0.0, 0.0, 0.0),
        believed_camera_rotation_deg: tuple[float, float, float] | list[float] = (0.0, 0.0, 0.0),
        robot: str = "iiwa",
    ) -> None:
        arm = arm_spec(robot)
        require_arm(arm, "robocell/VisionSort-v1", min_reach_m=MIN_REACH_M)
        low, high = (int(n) for n in parts)
        if not 1 <= low <= high <= MAX_PARTS:
            raise ValueError(f"parts must be (min, max) with 1 <= min <= max <= 5, got {parts}")
        if not 0.0 <= defect_rate <= 1.0:
            raise ValueError(f"defect_rate must be in [0, 1], got {defect_rate}")
        if image_size < 16:
            raise ValueError(f"image_size must be at least 16 pixels, got {image_size}")
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
        if grid_size is not None and action_mode != "grid":
            raise ValueError("grid_size applies to action_mode='grid' only")
        values = self.check_line_values(
            camera_tilt_deg=camera_tilt_deg,
            camera_shift_mm=camera_shift_mm,
            lamp_level=lamp_level,
            lamp_tilt_deg=lamp_tilt_deg,
            colour_jitter=colour_jitter,
            believed_camera_shift_mm=believed_camera_shift_mm,
            believed_camera_rotation_deg=believed_camera_rotation_deg,
        )
        look = Appearance(light_tilt_deg, light_level_jitter, colour_jitter)
        self._nominal_camera = OverheadCamera(TRAY_CENTRE_M, CAMERA_HEIGHT_M, FIELD_M, image_size)
        self._grid_size = None
        if action_mode == "grid":
            self._grid_size = 2 * image_size if grid_size is None else int(grid_size)
        camera = self._nominal_camera
        grid = self._believed_grid(camera)
        self.action_fields = CONTINUOUS_FIELDS if grid is None else GRID_FIELDS
        sim = Sim(timestep_s=PHYSICS_STEP_S)
        render_client, planner = RenderClient(camera, depth), ArmPlanner(SUCTION_CUP, arm)
        try:
            task = VisionSortTask(
                sim,
                Robot(sim, SUCTION_CUP, arm),
                render_client,
                planner,
                (low, high),
                defect_rate,
                look,
                grid,
            )
            super().__init__(sim, task.robot, task, energy_weight, render_mode, values)
            self.apply_line_values(values)
        except Exception:
            for client in (sim, render_client, planner):
                client.close()
            raise
        task.meter = self.meter

    def true_camera(self) -> OverheadCamera:
        """The plant's camera: the mount moved by ``camera_tilt_deg`` and ``camera_shift_mm``."""
        shift_x, shift_y = self._line_values["camera_shift_mm"]
        tilt = float(self._line_values["camera_tilt_deg"])
        return dataclasses.replace(
            self._nominal_camera,
            shift_m=(shift_x / 1000.0, shift_y / 1000.0, 0.0),
            rotation_deg=(0.0, tilt, 0.0),
        )

    def believed_camera(self) -> OverheadCamera:
        """The camera the controller side believes in (``believed_camera_*``)."""
        shift = tuple(float(v) / 1000.0 for v in self._line_values["believed_camera_shift_mm"])
        rotation = tuple(float(v) for v in self._line_values["believed_camera_rotation_deg"])
        return dataclasses.replace(self._nominal_camera, shift_m=shift, rotation_deg=rotation)

    def apply_line_values(self, values: Mapping[str, Any]) -> None:
        """Move the true camera, the lamp and the batch; rebuild the belief's pick grid."""
        task = self.task
        if {"camera_tilt_deg", "camera_shift_mm"} & set(values):
            task.render_client.set_camera(self.true_camera())
        if {"believed_camera_shift_mm", "believed_camera_rotation_deg"} & set(values):
            task.camera = self.believed_camera()
            task.grid = self._believed_grid(task.camera)
        names = ("lamp_level", "lamp_tilt_deg", "colour_jitter")
        look = {k: float(values[k]) for k in names if k in values}
        if look:
            task.look = dataclasses.replace(task.look, **look)

    def _believed_grid(self, camera: OverheadCamera) -> PickGrid | None:
        if self._grid_size is None:
            return None
        return PickGrid.from_camera(camera, self._grid_size, PART_TOP_M, BINS)

    @property
    def action_grid(self) -> dict[str, Any] | None:
        """The pick grid (rows, cols, bins, x and y ranges across the image), or None."""
        return None if self.task.grid is None else self.task.grid.describe()

    def close(self) -> None:
        """Release the physics client, the camera's render client and the planner's client."""
        self.task.render_client.close()
        self.task.planner.close()
        super().close()
