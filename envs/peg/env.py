"""The assembly cell: ``robocell/PegInsert-v0`` and ``robocell/PegInsert-v1``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from robocell.envs.arms import arm_spec, require_arm
from robocell.envs.core import CellEnv
from robocell.envs.peg.ft_sensor import FTSensorSpec
from robocell.envs.peg.impedance import CartesianImpedance, ImpedanceGains
from robocell.envs.peg.plant import LINE_PARAMETERS
from robocell.envs.peg.task import OBSERVATION_FIELDS, PEG, PegInsertTask
from robocell.envs.robot import Robot
from robocell.envs.sim import Sim

__all__ = ["OBSERVATION_FIELDS", "PegInsertEnv", "PegInsertEnvV1", "PegInsertTask"]


class PegInsertEnv(CellEnv):
    """Insert a peg into a chamfered hole whose position is known only to ±4 mm.

    ## Description
    A KUKA LBR iiwa 14 holds a 20 × 20 × 100 mm steel peg (0.31 kg) as a rigid part of the
    tool. A fixture block (100 × 100 × 120 mm) has a square blind hole 30 mm deep with
    ``clearance_mm`` per side and a 45° chamfer of ``chamfer_mm`` at its mouth, all exact
    boxes. The block stands at a random pose (±50 mm around x = 0.6 m, y = 0, yaw ±30°); the
    policy is told a nominal hole position that is off by up to ±``position_error_mm`` in x
    and y (the height and yaw are exact), so it must find the hole by touch. The arm is
    compliant: a Cartesian impedance controller (joint torques Jᵀ·F + gravity and Coriolis
    compensation + a null-space posture term, at the 240 Hz physics rate) pulls the peg tip
    towards a set-point with stiffness K, so pressing the set-point 2 mm into the fixture
    gives 2 mm × K (4 N at the default 2000 N/m), not a motor-saturated spike. The peg's tip
    link has no collision shape and the set-point limits keep the peg over the block, so the
    arm's own links stay ≥ 70 mm above the fixture: no collision filtering is needed.

    ## Action Space
    ``Box(-1, 1, (3,), float32)``: displacement of the impedance set-point in the nominal
    hole frame (x, y, z up), ×1 mm per 0.05 s step (at most 20 mm/s). The set-point stays
    within ±30 mm (x, y) and −45…+60 mm (z) of the nominal hole mouth and at most 30 mm from
    the peg tip (so the spring can push at most K × 30 mm = 60 N). The peg's orientation is
    held pointing down, square to the hole.

    ## Observation Space
    ``Box(16,) float32``, fields in ``OBSERVATION_FIELDS`` (name, unit, bounds), all in
    the nominal hole frame: peg tip position relative to the nominal hole mouth (3, mm), tip
    velocity (3, mm/s), contact force on the peg (3, N) and moment about the sensor (3, N·m)
    from the zeroed wrist sensor (mean of the control period's samples, noise σ 0.1 N and
    0.003 N·m per sample), set-point minus tip (3, mm: the spring's deflection) and the
    elapsed fraction of the 15 s time limit.

    ## Rewards
    Per step, summed; each term is in ``info["reward/<name>"]``. Approach, alignment and
    depth are potential differences Φ(now) − Φ(before) (true hole frame, d = peg tip to
    hole mouth, r = tip to hole axis), so their episode sums depend only on where the peg
    started and ended — no reward for dawdling:
    - ``approach``: Φ = −tanh(d / 20 mm), d measured to the mouth (0 once inside the
      hole); per episode −1 … +1.
    - ``alignment``: Φ = −tanh(r / 2 mm); per episode −1 … +1.
    - ``depth``: Φ = 2 · min(depth, 25 mm) / 25 mm; per episode 0 … +2.
    - ``force_excess``: −0.2 · clip((F − 25 N) / 25 N, 0, 1) per step with F the step's peak
      contact force and the default 50 N limit, and −10 on the step that damages the part
      (−10.2 … 0).
    - ``success``: +10 once, on the step the peg reaches 25 mm depth undamaged.
    - ``energy``: −λ · electrical energy of the step (J); λ = ``energy_weight``, default
      0.005 J⁻¹. Holding the arm costs 37–41 W (20 W standby + copper loss): ≈ −0.01 per
      step.

    ## Starting State
    Hole pose and nominal error are drawn uniformly; the peg tip starts 20–30 mm above the
    nominal hole mouth, up to ±10 mm off in x and y, at rest, the sensor tared.

    ## Episode End
    Terminated when the peg tip is ≥ 25 mm deep (success) or the contact force has exceeded
    ``force_limit_n`` (damaged part). Truncated at 300 steps (15 s) or on a physics fault.
    ``episode_metrics`` adds insertion depth and its maximum (mm), peak contact force (N),
    damaged flag, time to insert (s; the time limit when not inserted), the final
    lateral error of the tip from the true hole axis (mm), and the episode's conditions:
    ``position_error_mm`` (horizontal distance between the nominal and the true hole, mm; at
    most √2 · ``position_error_mm`` of the kwargs) and ``clearance_mm`` (per side, mm).

    ## Arguments
    ``energy_weight`` (λ, J⁻¹), ``clearance_mm`` (per side, > 0, default 0.5),
    ``chamfer_mm`` (0 ≤ c < 5, default 2), ``position_error_mm`` (default 4),
    ``force_limit_n`` (default 50), ``stiffness_n_m`` (2000), ``damping_n_s_m`` (200),
    ``rot_stiffness_nm_rad`` (100, < 120 for stability), ``rot_damping_nms_rad`` (2),
    ``force_noise_n`` (0.1), ``torque_noise_nm`` (0.003), ``render_mode``, ``robot`` (the
    arm: ``"iiwa"``, the default, ``"panda"`` or ``"xarm6"``; see docs/CELLS.md, "Arms").

    Plant parameters (``configure`` changes them between episodes): ``clearance_mm`` (mm,
    0.05 … 2, hole wear) and ``joint_friction_nm`` (N·m, 0 … 5, default 0: Coulomb friction
    in each arm joint that the controller's torques must overcome, which costs energy).
    The controller needs no belief of them: it finds the hole by touch.

    ## Version History
    - v0: initial release.
    - v1: the impedance controller's model (TCP Jacobian, mass matrix, gravity and Coriolis
      torques, TCP pose) comes from Pinocchio on the same URDF instead of PyBullet, and its
      law is compiled (numba), for speed (:class:`PegInsertEnvV1`). The models agree to
      1e-14, so the physics is the same but episodes differ from v0's in the last bits.
    """

    observation_fields = OBSERVATION_FIELDS
    line_parameters = LINE_PARAMETERS
    action_fields: ClassVar[list[dict[str, Any]]] = [
        {
            "name": f"setpoint_step_{axis}",
            "unit": "mm",
            "low": -1.0,
            "high": 1.0,
            "scale": 1.0,
            "doc": f"step of the impedance set-point along the hole frame's {axis} axis "
            "(nominal hole frame, z along the hole's axis, up) per control period, "
            "-1 … 1 mm; output × 1 mm",
        }
        for axis in "xyz"
    ]
    # A faulted observation: the impedance controller holds the set-point where it is.
    safe_action: ClassVar[list[float]] = [0.0, 0.0, 0.0]
    safe_action_description = "hold the impedance set-point (zero step on every axis)"

    def __init__(
        self,
        energy_weight: float = 0.005,
        clearance_mm: float = 0.5,
        chamfer_mm: float = 2.0,
        position_error_mm: float = 4.0,
        force_limit_n: float = 50.0,
        stiffness_n_m: float = 2000.0,
        damping_n_s_m: float = 200.0,
        rot_stiffness_nm_rad: float = 100.0,
        rot_damping_nms_rad: float = 2.0,
        force_noise_n: float = 0.1,
        torque_noise_nm: float = 0.003,
        render_mode: str | None = None,
        joint_friction_nm: float = 0.0,
        robot: str = "iiwa",
    ) -> None:
        spec = arm_spec(robot)
        # The impedance law was built for a 7-joint arm (the elbow held in the null space);
        # on the 6-joint xArm 6 the first physics step already blows up.
        require_arm(spec, "robocell/PegInsert", min_joints=7)
        values = self.check_line_values(
            clearance_mm=clearance_mm, joint_friction_nm=joint_friction_nm
        )
        gains = ImpedanceGains(
            stiffness_n_m, damping_n_s_m, rot_stiffness_nm_rad, rot_damping_nms_rad
        )
        gains.validate()
        sensor = FTSensorSpec(force_noise_n, torque_noise_nm)
        sensor.validate()
        sim = Sim()
        arm = Robot(sim, PEG, spec)
        try:
            task = PegInsertTask(
                sim,
                arm,
                clearance_mm,
                chamfer_mm,
                position_error_mm,
                force_limit_n,
                gains,
                sensor,
                impedance=self._impedance(arm),
            )
            super().__init__(sim, arm, task, energy_weight, render_mode, values)
            self.apply_line_values(values)
        except ValueError:
            sim.close()  # a rejected argument must not leak the physics client
            raise

    def apply_line_values(self, values: Mapping[str, Any]) -> None:
        """Widen (or narrow) the hole; set the joints' friction."""
        if "clearance_mm" in values:
            self.task.set_clearance(float(values["clearance_mm"]))
        if "joint_friction_nm" in values:
            self.robot.joint_friction_nm = float(values["joint_friction_nm"])

    def _impedance(self, robot: Robot) -> Callable[..., CartesianImpedance]:
        """What makes the impedance controller: PyBullet's model, NumPy's law (v0)."""
        return CartesianImpedance


class PegInsertEnvV1(PegInsertEnv):
    """Insert a peg into a chamfered hole found by touch: v0's cell on Pinocchio's arm model.

    ``robocell/PegInsert-v1``. Every section of :class:`PegInsertEnv`'s docstring holds
    (Description, Action Space, Observation Space, Rewards, Starting State, Episode End);
    only the impedance controller's model of the arm and how its law is evaluated differ.

    ## Arguments
    As :class:`PegInsertEnv`, the plant parameters ``clearance_mm`` and
    ``joint_friction_nm`` included.

    ## Version History
    - v1: the controller's TCP Jacobian, mass matrix, gravity and Coriolis torques and TCP
      pose come from Pinocchio on the arm's URDF, its linearisation and per-physics-step law
      are compiled (numba): :mod:`robocell.envs.peg.impedance_compiled`.
    """

    def _impedance(self, robot: Robot) -> Callable[..., CartesianImpedance]:
        """The compiled law on the arm's Pinocchio model (built once per env)."""
        # Imported here: numba and Pinocchio cost about 1.5 s to import, which v0 never pays.
        from robocell.envs.arm_model import ArmModel
        from robocell.envs.peg.impedance_compiled import CompiledImpedance

        model = ArmModel(robot.urdf_path, robot.base_position)
        return functools.partial(CompiledImpedance, model=model)
