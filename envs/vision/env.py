"""The vision sorting cell's env assembly: ``robocell/VisionSort-v0``.

An overhead camera sees a tray of parts, some defective; each env step is one whole
pick-and-place cycle run in physics (see :class:`VisionSortEnv`). The scene lives in
:mod:`robocell.envs.vision.scene`, the camera in :mod:`robocell.envs.vision.camera`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from robocell.envs.core import CellEnv
from robocell.envs.robot import KukaIiwa
from robocell.envs.sim import Sim
from robocell.envs.vision.camera import OverheadCamera, RenderClient
from robocell.envs.vision.pick_place import ArmPlanner
from robocell.envs.vision.scene import (
    CAMERA_HEIGHT_M,
    FIELD_M,
    MAX_PARTS,
    SUCTION_CUP,
    TRAY_CENTRE_M,
    Appearance,
)
from robocell.envs.vision.task import PHYSICS_STEP_S, STATE_FIELDS, VisionSortTask


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
    ``Box(-1, 1, (3,), float32)``: the pick point on the tray, x (away from the robot) and y
    (to its left), each × 150 mm from the tray centre (the camera's field); and the bin,
    > 0 NG, ≤ 0 OK. IK runs once per waypoint (above the part, on it, above the bin slot);
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
    ``image_size`` (pixels, square), ``depth`` (add the depth channel), ``light_tilt_deg``,
    ``light_level_jitter``, ``colour_jitter`` (0 turns each randomisation off),
    ``render_mode`` (None or "rgb_array": an oblique view of the whole cell).

    ## Version History
    - v0: initial release.
    """

    observation_fields: ClassVar[dict[str, list[dict[str, Any]]]] = {"state": STATE_FIELDS}
    action_fields: ClassVar[list[dict[str, Any]]] = [
        {"name": "pick_x", "unit": "1", "doc": "pick x from the tray centre / 150 mm"},
        {"name": "pick_y", "unit": "1", "doc": "pick y from the tray centre / 150 mm"},
        {"name": "bin", "unit": "1", "doc": "> 0: NG bin, <= 0: OK bin"},
    ]

    def __init__(
        self,
        energy_weight: float = 5e-4,
        parts: tuple[int, int] | list[int] = (3, 5),
        defect_rate: float = 0.3,
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
        look = Appearance(light_tilt_deg, light_level_jitter, colour_jitter)
        camera = OverheadCamera(TRAY_CENTRE_M, CAMERA_HEIGHT_M, FIELD_M, image_size)
        sim = Sim(timestep_s=PHYSICS_STEP_S)
        render_client, planner = RenderClient(camera, depth), ArmPlanner(SUCTION_CUP)
        try:
            robot = KukaIiwa(sim, SUCTION_CUP)
            task = VisionSortTask(
                sim, robot, render_client, planner, (low, high), defect_rate, look
            )
            super().__init__(sim, robot, task, energy_weight, render_mode)
        except Exception:
            for client in (sim, render_client, planner):
                client.close()
            raise
        task.meter = self.meter

    def close(self) -> None:
        """Release the physics client, the camera's render client and the planner's client."""
        self.task.render_client.close()
        self.task.planner.close()
        super().close()
