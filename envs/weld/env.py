"""The welding cell's env assembly: ``robocell/WeldSeam-v1``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from robocell.envs.arms import arm_spec, require_arm
from robocell.envs.core import CellEnv
from robocell.envs.robot import Robot
from robocell.envs.sim import Sim
from robocell.envs.weld.plant import BELIEF_PARAMETERS, LINE_PARAMETERS, true_tip_offset_mm
from robocell.envs.weld.reward import WeldRewardSpec
from robocell.envs.weld.seam import SHAPES
from robocell.envs.weld.task import OBSERVATION_FIELDS, TORCH, WeldSeamTask

# The far end of the longest seam on the farthest plate lies 0.77 m out, torch down 0.18 m
# above: the xArm 6 (0.70 m) stalls 11 mm short of it.
MIN_REACH_M = 0.8


class WeldSeamEnv(CellEnv):
    """Arc-weld a seam on a fixtured plate, found with a noisy laser seam tracker.

    ## Description
    A KUKA LBR iiwa 14 (or another arm: ``robot``) carries a GMAW torch. A seam (straight,
    arc or S-curve, 120–250 mm) lies on a plate whose pose is randomised (±20 mm, ±20° yaw
    around the fixture). The policy is told that nominal (CAD) pose, but the plate really
    sits up to ±3 mm (and ±1 mm in height) away from it: only the seam tracker reveals the
    real seam. The torch starts 25 mm above the nominal seam start. It must descend to the
    12 mm standoff, strike the arc, travel the seam inside the welding procedure's
    tolerances and stop at its end.

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
    Per step, summed; each term is in ``info["reward/<name>"]`` (dimensionless; weights in
    :class:`~robocell.envs.weld.reward.WeldRewardSpec`). No ending pays: there is no per-step
    cost apart from energy and defects, and a crash or a lost seam costs 1 (more than waiting
    out the time limit with the arc off, ≈ 0.3).
    - ``weld_good``: +0.1 per mm of seam welded good this step (0 … +0.12 per step at
      12 mm/s; 0 … +25 per episode).
    - ``weld_defect``: −0.1 per mm of defective weld this step (−0.12 … 0 per step at
      12 mm/s, −0.05 for a standing arc; −25 … 0 per episode).
    - ``success``: +10 once, on the final step of a successful episode (0 or +10).
    - ``abort``: −1 once, on the step that ends the episode by a crash (standoff < 2 mm) or
      a lost seam (> 40 mm sideways or > 80 mm up) (−1 or 0).
    - ``shaping_standoff``, ``shaping_lateral``, ``shaping_speed``, ``shaping_arc``:
      potential-based shaping F = γ·Φ(s′) − Φ(s) (Ng et al. 1999) with γ = ``gamma`` and
      Φ(s′) = 0 on a terminal step (not on a time-limit truncation), one potential each, from
      the true state. With closeness q(e, cap) = 1 − min(|e|, cap) / cap of the standoff error
      from 12 mm (cap 25 mm), the lateral offset from the real seam (cap 10 mm) and the travel
      speed along the real seam minus 9 mm/s, the procedure band's centre (cap 9 mm/s):
      Φ_standoff = w · q_standoff, Φ_lateral = w · q_lateral, Φ_speed = w · q_standoff ·
      q_speed (travel once at welding height) and Φ_arc = w · arc_on · q_standoff ·
      q_lateral · q_speed; w = ``shaping_weight`` (default 1), so each Φ is in [0, w] and
      each F in [−w, +w]. The γ-discounted sum of F over an episode is γᵀ·Φ(s_T) − Φ(s_0):
      shaping cannot change the optimal policy.
    - ``energy``: −λ · electrical energy of the step (J); λ = ``energy_weight``, default
      2e-4 J⁻¹. The arc (2.16 kW) dominates: about −0.043 per step with the arc on, about
      −6e-4 per step standing still with the arc off.

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
    ``calibration_error_mm``, ``gamma`` (γ of the shaping, default 0.99: pass the learning
    algorithm's γ), ``shaping_weight`` (w, default 1; 0 switches shaping off),
    ``render_mode`` (None or "rgb_array"), ``robot`` (the arm: ``"iiwa"``, the default,
    ``"panda"`` or ``"xarm6"``; see docs/CELLS.md, "Arms").

    Plant parameters (hidden from the controller; ``configure`` changes them between
    episodes): ``tcp_offset_mm`` (mm, x, y, z in the TCP frame, −20 … 20 each: the wire tip
    off the taught TCP, a bent torch) and ``wire_stickout_mm`` (mm, 5 … 25, default 15: the
    tip moves along the torch by its change). The belief (the TCP calibration):
    ``believed_tcp_offset_mm`` (mm, x, y, z, TCP frame), the tip offset the action moves
    and the seam tracker reads from; the arc burns at the true tip. With belief = truth the
    cell welds as with a straight torch.

    ## Version History
    - v1: learnable reward — the per-step tracking cost is replaced by potential-based
      shaping (standoff, lateral, speed, arc), crash and lost endings cost 1 (``abort``),
      a defect costs 0.1/mm (was 0.2); the process model, what counts as a good weld, and
      the success rule are unchanged.
    - v0: initial release (per-step tracking cost, no abort penalty; ending early paid).
    """

    observation_fields = OBSERVATION_FIELDS
    line_parameters = LINE_PARAMETERS
    belief_parameters = BELIEF_PARAMETERS
    action_fields: ClassVar[list[dict[str, Any]]] = [
        {"name": "travel_velocity", "unit": "mm/s", "low": -20.0, "high": 20.0, "scale": 20.0,
         "doc": "TCP velocity command along the nominal seam (seam frame: tangent at the "
                "TCP's progress), -20 … 20 mm/s; output × 20 mm/s"},
        {"name": "lateral_velocity", "unit": "mm/s", "low": -10.0, "high": 10.0, "scale": 10.0,
         "doc": "TCP velocity command left of the nominal seam (seam frame: in-plate normal), "
                "-10 … 10 mm/s; output × 10 mm/s"},
        {"name": "up_velocity", "unit": "mm/s", "low": -10.0, "high": 10.0, "scale": 10.0,
         "doc": "TCP velocity command up from the nominal plate (seam frame: plate normal), "
                "-10 … 10 mm/s; output × 10 mm/s"},
        {"name": "arc_on", "unit": "1", "low": -1.0, "high": 1.0, "scale": 1.0,
         "doc": "welding arc: > 0 strikes / keeps the arc, <= 0 switches it off (-1 … 1)"},
    ]  # fmt: skip
    # A faulted observation: the torch stops where it is and the arc goes off.
    safe_action: ClassVar[list[float]] = [0.0, 0.0, 0.0, -1.0]
    safe_action_description = "zero TCP velocity on every axis, arc off"

    def __init__(
        self,
        energy_weight: float = 2e-4,
        shapes: tuple[str, ...] | list[str] = SHAPES,
        seam_length_mm: tuple[float, float] | list[float] = (120.0, 250.0),
        pose_noise_mm: float = 20.0,
        pose_noise_deg: float = 20.0,
        calibration_error_mm: float = 3.0,
        gamma: float = 0.99,
        shaping_weight: float = 1.0,
        render_mode: str | None = None,
        tcp_offset_mm: tuple[float, float, float] | list[float] = (0.0, 0.0, 0.0),
        wire_stickout_mm: float = 15.0,
        believed_tcp_offset_mm: tuple[float, float, float] | list[float] = (0.0, 0.0, 0.0),
        robot: str = "iiwa",
    ) -> None:
        arm = arm_spec(robot)
        require_arm(arm, "robocell/WeldSeam-v1", min_reach_m=MIN_REACH_M)
        values = self.check_line_values(
            tcp_offset_mm=tcp_offset_mm,
            wire_stickout_mm=wire_stickout_mm,
            believed_tcp_offset_mm=believed_tcp_offset_mm,
        )
        reward = WeldRewardSpec(gamma=float(gamma), shaping_weight=float(shaping_weight))
        reward.validate()  # before the physics client exists: nothing to leak
        sim = Sim()
        task = WeldSeamTask(
            sim,
            Robot(sim, TORCH, arm),
            tuple(shapes),
            tuple(seam_length_mm),
            pose_noise_mm,
            pose_noise_deg,
            calibration_error_mm,
            reward=reward,
        )
        super().__init__(sim, task.robot, task, energy_weight, render_mode, values)
        self.apply_line_values(values)

    def apply_line_values(self, values: Mapping[str, Any]) -> None:
        """Put the true tip (bend plus stick-out) and the believed one into the task."""
        v = self._line_values
        true_mm = true_tip_offset_mm(v["tcp_offset_mm"], v["wire_stickout_mm"])
        believed_mm = [float(x) for x in v["believed_tcp_offset_mm"]]
        self.task.set_tool_offsets(true_mm / 1000.0, [x / 1000.0 for x in believed_mm])
