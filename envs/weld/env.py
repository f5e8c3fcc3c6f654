"""The welding cell's env assembly: ``robocell/WeldSeam-v0``."""

from __future__ import annotations

from typing import Any, ClassVar

from robocell.envs.core import CellEnv
from robocell.envs.robot import KukaIiwa
from robocell.envs.sim import Sim
from robocell.envs.weld.seam import SHAPES
from robocell.envs.weld.task import OBSERVATION_FIELDS, TORCH, WeldSeamTask


class WeldSeamEnv(CellEnv):
    """Arc-weld a seam on a fixtured plate, found with a noisy laser seam tracker.

    ## Description
    A KUKA LBR iiwa 14 carries a GMAW torch. A seam (straight, arc or S-curve, 120–250 mm)
    lies on a plate whose pose is randomised (±20 mm, ±20° yaw around the fixture). The
    policy is told that nominal (CAD) pose, but the plate really sits up to ±3 mm (and
    ±1 mm in height) away from it: only the seam tracker reveals the real seam. The torch
    starts 25 mm above the nominal seam start. It must descend to the 12 mm standoff, strike
    the arc, travel the seam inside the welding procedure's tolerances and stop at its end.

    ## Action Space
    ``Box(-1, 1, (4,), float32)``: TCP velocity in the nominal seam frame at the torch's
    progress point — travel along the seam (×20 mm/s), lateral to the left (×10 mm/s), up
    (×10 mm/s) — and arc on (> 0) / off (≤ 0). The torch is held pointing down by IK, called
    once per step on a set-point that leads the TCP by at most 5 mm.

    ## Observation Space
    ``Box(-inf, inf, (16,), float32)``, fields in ``OBSERVATION_FIELDS`` (name, unit): progress
    along the nominal seam (mm), remaining length (mm), lateral offset from the nominal seam
    (mm), height above the nominal plate (mm), TCP velocity in the seam frame (3, mm/s), seam
    tracker lateral reading (mm) and standoff reading (mm) with 0.1 mm noise, tracker valid
    flag, arc on flag, nominal seam heading change 10/20/40 mm ahead (rad), arc monitor good
    fraction and defect length (mm).

    ## Rewards
    Per step, summed; each term is in ``info["reward/<name>"]``:
    - ``weld_good``: +0.1 per mm of seam welded good this step (0 … +25 per episode).
    - ``weld_defect``: −0.2 per mm of defective weld this step.
    - ``tracking``: −0.005 per mm of (lateral error + standoff error), each capped at 10 mm,
      while the torch is over the seam (−0.1 … 0 per step).
    - ``success``: +10 once, on the final step of a successful episode.
    - ``energy``: −λ · electrical energy of the step (J); λ = ``energy_weight``, default
      2e-4 J⁻¹. The arc (2.16 kW) dominates: about −0.043 per step with the arc on.

    ## Starting State
    Seam shape and length, nominal plate pose and calibration error are drawn uniformly; the
    TCP starts 25 mm above the nominal seam start (±2 mm), torch down, at rest.

    ## Episode End
    Terminated when the TCP passes 3 mm beyond the nominal seam end, strays more than 40 mm
    sideways or 80 mm up, or comes within 2 mm of the plate (crash). Truncated at 450 steps
    (45 s) or on a physics fault. Success: ≥ 95 % of the seam welded good and ≤ 2 mm of
    defects. ``episode_metrics`` adds seam coverage, good fraction, defect length (mm), mean
    lateral error (mm), heat input (J/mm), arc time (s), and the episode's conditions:
    ``seam_shape_index`` (0 straight, 1 arc, 2 s_curve: the index in ``SHAPES``),
    ``seam_length_mm`` (mm) and ``calibration_error_mm`` (horizontal distance between the
    plate's real and nominal pose, mm; at most √2 · ``calibration_error_mm`` of the kwargs).

    ## Arguments
    ``energy_weight`` (λ, J⁻¹), ``shapes`` (subset of straight/arc/s_curve),
    ``seam_length_mm`` (min, max), ``pose_noise_mm``, ``pose_noise_deg``,
    ``calibration_error_mm``, ``render_mode`` (None or "rgb_array").

    ## Version History
    - v0: initial release.
    """

    observation_fields = OBSERVATION_FIELDS
    action_fields: ClassVar[list[dict[str, Any]]] = [
        {"name": "travel_velocity", "unit": "mm/s", "low": -20.0, "high": 20.0, "scale": 20.0},
        {"name": "lateral_velocity", "unit": "mm/s", "low": -10.0, "high": 10.0, "scale": 10.0},
        {"name": "up_velocity", "unit": "mm/s", "low": -10.0, "high": 10.0, "scale": 10.0},
        {"name": "arc_on", "unit": "1", "low": -1.0, "high": 1.0, "scale": 1.0},
    ]

    def __init__(
        self,
        energy_weight: float = 2e-4,
        shapes: tuple[str, ...] | list[str] = SHAPES,
        seam_length_mm: tuple[float, float] | list[float] = (120.0, 250.0),
        pose_noise_mm: float = 20.0,
        pose_noise_deg: float = 20.0,
        calibration_error_mm: float = 3.0,
        render_mode: str | None = None,
    ) -> None:
        sim = Sim()
        robot = KukaIiwa(sim, TORCH)
        task = WeldSeamTask(
            sim,
            robot,
            tuple(shapes),
            tuple(seam_length_mm),
            pose_noise_mm,
            pose_noise_deg,
            calibration_error_mm,
        )
        super().__init__(sim, robot, task, energy_weight, render_mode)
