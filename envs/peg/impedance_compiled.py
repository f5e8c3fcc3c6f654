"""The Cartesian impedance law on Pinocchio's model of the arm, compiled (``PegInsert-v1``).

The same law as :class:`robocell.envs.peg.impedance.CartesianImpedance`, linearised the same
way once per control period, with two changes of cost, not of physics:

- the model (TCP Jacobian, M, g + C q̇, TCP pose) comes from one Pinocchio call on the arm's
  URDF (:class:`robocell.envs.arm_model.ArmModel`) instead of three PyBullet calls, and the
  linearisation (null-space projector, implicit damping, the law's offset and gain) is one
  compiled call (:func:`linearised_law`);
- each physics step is one compiled call (:func:`law_torques`) on the raw joint reading.

The two models agree to 2e-14 (tests/test_arm_model.py), but not bit for bit, and v0's
set-point error sees PyBullet's single-precision TCP pose: episodes differ from
``PegInsert-v0`` in the last bits, hence a new version. Compiled functions are cached on disk
beside this module (numba ``cache=True``): once any process has compiled them (24 s measured
on a loaded 2-core machine), every other one, env worker processes included, loads them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from robocell.envs.arm_model import ArmModel
from robocell.envs.peg.impedance import CartesianImpedance, ImpedanceGains, arm_state
from robocell.envs.robot import KukaIiwa
from robocell.envs.sim import rotation_matrix


class CompiledImpedance(CartesianImpedance):
    """:class:`CartesianImpedance` on Pinocchio's model of the arm, its law compiled.

    Args:
        robot, gains, rest_posture, extra_joints: as :class:`CartesianImpedance`.
        model: the arm's model, built from ``robot.urdf_path`` at ``robot.base_position``.
    """

    def __init__(
        self,
        robot: KukaIiwa,
        gains: ImpedanceGains | None = None,
        rest_posture: Sequence[float] | None = None,
        extra_joints: Sequence[int] = (),
        *,
        model: ArmModel,
    ) -> None:
        super().__init__(robot, gains, rest_posture, extra_joints)
        self.model = model

    def update_model(self) -> None:
        """Refresh the model at the current joint state and linearise the law about it."""
        model, g = self.model, self.gains
        q, qd = arm_state(self.robot)
        model.update(q, qd)
        error = np.concatenate(
            [
                self.setpoint_m - model.tcp_position_m,
                model.rotation_error(rotation_matrix(self.setpoint_quat)),
            ]
        )
        self._offset, self._gain = linearised_law(
            model.jacobian,
            model.mass_matrix,
            model.bias_torques_nm,
            error,
            self._k_task,
            self._d_task,
            g.null_stiffness_nm_rad,
            g.null_damping_nms_rad,
            self._rest,
            q,
            self.robot.sim.timestep_s,
        )

    def apply(self) -> np.ndarray:
        """Compute and command the joint torques for the current joint state (N·m)."""
        robot = self.robot
        self.last_read = states = robot.joint_reading()
        return robot.apply_torques(law_torques(states, self._offset, self._gain))


@njit(cache=True)
def linearised_law(
    jac: np.ndarray,
    mass: np.ndarray,
    bias_nm: np.ndarray,
    error: np.ndarray,
    k_task: np.ndarray,
    d_task: np.ndarray,
    k_null: float,
    d_null: float,
    rest: np.ndarray,
    q: np.ndarray,
    dt_s: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The law's offset c + A q₀ (N·m) and gain [A B] (7 × 14) about joint positions ``q``.

    ``jac`` is the 6 × n TCP Jacobian, ``mass`` M, ``bias_nm`` g + C q̇, ``error`` the TCP's
    set-point error (position, m; rotation vector, rad), ``k_task``/``d_task`` the task-space
    stiffness and damping (6), ``k_null``/``d_null`` the posture gains, ``rest`` the posture,
    ``dt_s`` the physics step: the formulas of :meth:`CartesianImpedance.update_model`.
    """
    n = q.shape[0]
    jac_t = np.ascontiguousarray(jac.T)
    mass_inv_jac_t = np.linalg.solve(mass, jac_t)
    task_mass_inv = jac @ mass_inv_jac_t  # (J M⁻¹ Jᵀ) = Λ⁻¹
    null = np.eye(n) - jac_t @ np.linalg.solve(task_mass_inv, mass_inv_jac_t.T)
    damping = (jac_t * d_task) @ jac + d_null * null
    stiffness = (jac_t * k_task) @ jac + k_null * null
    implicit_damping = mass @ np.linalg.solve(mass + dt_s * damping, damping)
    posture = null @ (k_null * (rest - q))
    offset = jac_t @ (k_task * error) + bias_nm + posture + stiffness @ q
    gain = np.empty((n, 2 * n))
    gain[:, :n] = stiffness
    gain[:, n:] = implicit_damping
    return offset, gain


@njit(cache=True)
def law_torques(reading: tuple, offset: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """τ = offset − gain [q; q̇] (N·m) from raw ``getJointStates`` rows (the arm's first)."""
    n = offset.shape[0]
    tau = offset.copy()
    for joint in range(n):
        q, qd = reading[joint][0], reading[joint][1]
        for row in range(n):
            tau[row] -= gain[row, joint] * q + gain[row, n + joint] * qd
    return tau
