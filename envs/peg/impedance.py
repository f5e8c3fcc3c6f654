"""Cartesian impedance control of the iiwa's TCP under joint torque control.

The control law, evaluated at every physics step from the measured joint state, is

    τ = Jᵀ [K_x (x_set − x) − D_x ẋ ;  K_r e_R − D_r ω]  +  g(q, q̇)  +  N (K_n (q_rest − q) − D_n q̇)

with J the 6 × 7 TCP Jacobian, e_R the rotation vector from the TCP orientation to the
set-point orientation, g the gravity and Coriolis torques (inverse dynamics at zero
acceleration) and N = I − Jᵀ J̄ᵀ, J̄ = M⁻¹ Jᵀ (J M⁻¹ Jᵀ)⁻¹, the dynamically consistent
null-space projector (Khatib, 1987): the posture term holds the elbow where the arm started
without accelerating the TCP. A contact that holds the TCP away from its set-point
therefore pushes back with K_x · (x_set − x): forces follow the commanded displacement
instead of saturating the motors.

Cost: the model (J, M, N, g, x, e_R) is refreshed once per control period by
:meth:`CartesianImpedance.update_model` and linearised about that state, so the law becomes

    τ = c − A (q − q₀) − B q̇

which each physics step evaluates with one 7 × 14 product. Over one control period (0.05 s)
the TCP moves at most a millimetre or so; with the set-point moving at up to 20 mm/s per
axis, the linearised torques differ from the exact law by at most 0.13 N·m at the end of a
period (≈ 0.25 N at the TCP). In a static contact (the case the force limit cares about) the
law is exact.

:class:`CartesianImpedance` takes the model from PyBullet and evaluates the law with NumPy
(``PegInsert-v0``); :mod:`robocell.envs.peg.impedance_compiled` runs the same law on
Pinocchio's model, compiled (``PegInsert-v1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from robocell.envs.robot import KukaIiwa


@dataclass(frozen=True)
class ImpedanceGains:
    """Stiffness and damping of the TCP and of the null-space posture term.

    The defaults sit inside what KUKA's own Cartesian impedance mode allows for the iiwa
    (translational stiffness 0–5000 N/m, rotational 0–300 N·m/rad): soft enough that a
    2 mm set-point error costs only 4 N, stiff enough to track to a fraction of a millimetre
    in free space. Damping is near critical for the arm's effective TCP inertia in the
    tool-down posture (3.5–10 kg translational, ≈ 0.02 kg·m² in tilt). Damping is applied
    implicitly (see :class:`CartesianImpedance`), so any damping is stable; stiffness is
    applied explicitly, and at 240 Hz physics the rotational stiffness must stay below about
    120 N·m/rad (the wrist's last link has only 0.001 kg·m² about the tool axis).

    Attributes:
        stiffness_n_m: translational stiffness K_x (N/m), equal on x, y, z.
        damping_n_s_m: translational damping D_x (N·s/m).
        rot_stiffness_nm_rad: rotational stiffness K_r (N·m/rad).
        rot_damping_nms_rad: rotational damping D_r (N·m·s/rad).
        null_stiffness_nm_rad: posture stiffness K_n in the null space (N·m/rad per joint).
        null_damping_nms_rad: posture damping D_n in the null space (N·m·s/rad per joint).
    """

    stiffness_n_m: float = 2000.0
    damping_n_s_m: float = 200.0
    rot_stiffness_nm_rad: float = 100.0
    rot_damping_nms_rad: float = 2.0
    null_stiffness_nm_rad: float = 10.0
    null_damping_nms_rad: float = 2.0

    def validate(self) -> None:
        """Raise ValueError for a negative or non-finite gain."""
        for name, value in vars(self).items():
            if not 0.0 <= value < float("inf"):
                raise ValueError(f"impedance gain {name} must be >= 0 and finite, got {value}")


class CartesianImpedance:
    """Impedance controller for a torque-controlled :class:`KukaIiwa`.

    Call :meth:`reset` after the robot is loaded and placed (it switches the arm to torque
    control and puts the set-point at the current TCP pose), :meth:`update_model` once per
    control period and :meth:`apply` before every physics step.

    PyBullet integrates applied torques explicitly, and a damping torque −B q̇ on the light
    wrist (0.001 kg·m²) is unstable at 240 Hz once B·dt/I > 2. The damping matrix is
    therefore replaced by its implicit equivalent B' = M (M + dt·B)⁻¹ B, which gives the
    velocity update that implicit (backward-Euler) damping would: stable for any gain, and
    equal to B for slow modes (dt·M⁻¹B ≪ 1). The URDF's own joint damping
    (0.5 N·m·s/rad, applied explicitly by the engine, which is just unstable on joint 7) is
    switched off; the controller provides all damping.

    Args:
        robot: the arm (loaded).
        gains: stiffness and damping.
        rest_posture: joint posture the null-space term pulls towards (rad); by default the
            posture at :meth:`reset`.
        extra_joints: further joints of the robot read in the same ``getJointStates`` call
            as the arm's (:meth:`KukaIiwa.read_also`), e.g. a force/torque sensor's;
            :attr:`last_read` keeps their raw states, so a sensor needs no read of its own in
            the hot loop.
    """

    def __init__(
        self,
        robot: KukaIiwa,
        gains: ImpedanceGains | None = None,
        rest_posture: Sequence[float] | None = None,
        extra_joints: Sequence[int] = (),
    ) -> None:
        self.robot = robot
        robot.read_also(extra_joints)
        self.last_read: tuple = ()
        self.gains = gains or ImpedanceGains()
        self.gains.validate()
        self.rest_posture = None if rest_posture is None else np.asarray(rest_posture, float)
        g = self.gains
        self._k_task = np.array([g.stiffness_n_m] * 3 + [g.rot_stiffness_nm_rad] * 3)
        self._d_task = np.array([g.damping_n_s_m] * 3 + [g.rot_damping_nms_rad] * 3)
        self.setpoint_m = np.zeros(3)
        self.setpoint_quat = np.array([0.0, 0.0, 0.0, 1.0])

    def reset(self, orientation: Sequence[float] | None = None) -> None:
        """Switch to torque control and hold the TCP where it is (optionally re-oriented)."""
        robot = self.robot
        for joint in robot.joint_indices:
            robot.sim.change_dynamics(robot.name, joint, jointDamping=0.0)
        robot.enable_torque_control()
        start_q = robot.joint_state().q
        self._rest = start_q if self.rest_posture is None else self.rest_posture
        position, quat = robot.tcp_pose()
        self.setpoint_m = position.copy()
        self.setpoint_quat = np.asarray(orientation if orientation is not None else quat, float)
        self.update_model()

    def update_model(self) -> None:
        """Refresh J, M, g and x and linearise the law about the current joint state."""
        robot, g = self.robot, self.gains
        q, qd = arm_state(robot)
        position, quat = robot.tcp_pose()
        jac = robot.jacobian(q)
        jac_t = jac.T
        # N = I − Jᵀ Λ J M⁻¹ (J of full row rank: away from singularities).
        mass = robot.sim.mass_matrix(robot.name, q)
        mass_inv_jac_t = np.linalg.solve(mass, jac_t)
        task_mass_inv = jac @ mass_inv_jac_t  # (J M⁻¹ Jᵀ) = Λ⁻¹
        null = np.eye(robot.n_joints) - jac_t @ np.linalg.solve(task_mass_inv, mass_inv_jac_t.T)
        error = np.concatenate(
            [self.setpoint_m - position, rotation_error(quat, self.setpoint_quat)]
        )
        damping = (jac_t * self._d_task) @ jac + g.null_damping_nms_rad * null
        stiffness = (jac_t * self._k_task) @ jac + g.null_stiffness_nm_rad * null
        implicit_damping = mass @ np.linalg.solve(mass + robot.sim.timestep_s * damping, damping)
        posture = null @ (g.null_stiffness_nm_rad * (self._rest - q))
        bias = jac_t @ (self._k_task * error) + robot.gravity_torques(q, qd) + posture
        # τ = c − A (q − q₀) − B q̇ = (c + A q₀) − [A B] [q; q̇]: one product per physics step.
        self._offset = bias + stiffness @ q
        self._gain = np.hstack([stiffness, implicit_damping])

    def apply(self) -> np.ndarray:
        """Compute and command the joint torques for the current joint state (N·m)."""
        robot = self.robot
        self.last_read = states = robot.joint_reading()
        arm = states[: robot.n_joints]
        return robot.apply_torques(
            self.torques(np.array([s[0] for s in arm] + [s[1] for s in arm]))
        )

    def torques(self, state: np.ndarray) -> np.ndarray:
        """Joint torques (N·m, before clipping) of the current law for ``state`` = [q; q̇]."""
        return self._offset - self._gain @ state


def arm_state(robot: KukaIiwa) -> tuple[np.ndarray, np.ndarray]:
    """The arm's joint positions (rad) and velocities (rad/s), from its shared joint reading."""
    states = robot.joint_reading()[: robot.n_joints]
    return np.array([s[0] for s in states]), np.array([s[1] for s in states])


def rotation_error(quat: Sequence[float], target_quat: Sequence[float]) -> np.ndarray:
    """Rotation vector (rad, world frame) that turns orientation ``quat`` into ``target_quat``.

    Quaternions are (x, y, z, w); the error quaternion is target ⊗ quat⁻¹, taken the short
    way round.
    """
    x1, y1, z1, w1 = (float(v) for v in target_quat)
    x2, y2, z2, w2 = (-float(quat[0]), -float(quat[1]), -float(quat[2]), float(quat[3]))
    w = w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2
    axis = np.array(
        [
            w1 * x2 + w2 * x1 + y1 * z2 - z1 * y2,
            w1 * y2 + w2 * y1 + z1 * x2 - x1 * z2,
            w1 * z2 + w2 * z1 + x1 * y2 - y1 * x2,
        ]
    )
    if w < 0.0:
        axis, w = -axis, -w
    sin_half = float(np.sqrt(axis @ axis))
    if sin_half < 1e-12:
        return 2.0 * axis
    return axis * (2.0 * np.arctan2(sin_half, w) / sin_half)
