"""The arm's rigid-body model from its URDF (Pinocchio): kinematics and dynamics off the engine.

:class:`ArmModel` reads the same URDF PyBullet loads (the arm with its tool welded on, see
:func:`robocell.envs.robot.tool_urdf_path`) and gives, for a joint state (q, q̇), what a
controller needs of the arm in PyBullet's conventions:

- the TCP Jacobian as ``calculateJacobian`` returns it: 6 × n, linear rows then angular rows,
  in the world frame at the TCP (Pinocchio's ``LOCAL_WORLD_ALIGNED`` at the ``tcp`` frame);
- the joint-space mass matrix M(q), as ``calculateMassMatrix``;
- the bias torques g(q) + C(q, q̇) q̇, inverse dynamics at zero acceleration, as
  ``calculateInverseDynamics`` with q̈ = 0;
- the TCP pose (position, rotation matrix) in the world.

PyBullet loads the arm with ``URDF_USE_INERTIA_FROM_FILE`` (``Sim.load_urdf``), so both read
the URDF's inertias; Pinocchio lumps the fixed-jointed tool links into the last moving body,
which changes no dynamics. Joints are in URDF order, the order of the arm's PyBullet joint
indices. tests/test_arm_model.py checks all of it against PyBullet to 1e-9.

One Pinocchio call computes every term (:meth:`ArmModel.update`): 9–14 µs for the iiwa,
against 43–55 µs for the three PyBullet calls (bench/bench_arm_model.py, loaded machine).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pinocchio as pin


class ArmModel:
    """A fixed-base arm from a URDF, its tool's tip a frame of the model.

    Call :meth:`update` with a joint state, then read :attr:`jacobian`, :attr:`mass_matrix`,
    :attr:`bias_torques_nm`, :attr:`tcp_position_m` and :attr:`tcp_rotation` of that state.
    The arrays may be the model's own buffers, which the next :meth:`update` overwrites.

    Args:
        urdf_path: the arm's URDF (with the tool).
        base_position: where the base stands in the world (m); the base is not rotated.
        tcp_frame: the URDF link whose origin is the TCP.
        gravity_m_s2: gravity along the world z-axis (m/s², negative: down).
    """

    def __init__(
        self,
        urdf_path: str,
        base_position: Sequence[float] = (0.0, 0.0, 0.0),
        tcp_frame: str = "tcp",
        gravity_m_s2: float = -9.81,
    ) -> None:
        model = pin.buildModelFromUrdf(urdf_path)
        _place_base(model, np.asarray(base_position, float))
        model.gravity.linear = np.array([0.0, 0.0, gravity_m_s2])
        if not model.existFrame(tcp_frame):
            raise KeyError(f"{urdf_path} has no link named {tcp_frame!r}")
        self.model = model
        self.data = model.createData()
        self.n_joints = model.nv
        self._tcp = model.getFrameId(tcp_frame)
        self._upper = np.triu_indices(self.n_joints, 1)
        self.jacobian = np.zeros((6, self.n_joints))
        self.mass_matrix = np.zeros((self.n_joints, self.n_joints))
        self.bias_torques_nm = np.zeros(self.n_joints)

    def update(self, q: np.ndarray, qd: np.ndarray) -> None:
        """Compute the Jacobian, M, bias torques and TCP pose at joint state (q, q̇)."""
        model, data = self.model, self.data
        pin.computeAllTerms(model, data, q, qd)
        self.jacobian = pin.getFrameJacobian(model, data, self._tcp, pin.LOCAL_WORLD_ALIGNED)
        mass = data.M  # Pinocchio fills the upper triangle only
        mass.T[self._upper] = mass[self._upper]
        self.mass_matrix = mass
        self.bias_torques_nm = data.nle

    @property
    def tcp_position_m(self) -> np.ndarray:
        """TCP position in the world (m) at the last :meth:`update`."""
        return self.data.oMf[self._tcp].translation

    @property
    def tcp_rotation(self) -> np.ndarray:
        """TCP orientation (3 × 3 rotation matrix, TCP axes in world columns) at the last update."""
        return self.data.oMf[self._tcp].rotation

    def rotation_error(self, target_rotation: np.ndarray) -> np.ndarray:
        """Rotation vector (rad, world frame) turning the TCP's orientation into the target's.

        The short way round: log(R_target Rᵀ), of norm at most π.
        """
        return pin.log3(target_rotation @ self.tcp_rotation.T)


def _place_base(model: pin.Model, position: np.ndarray) -> None:
    """Move what hangs on the world (the first joint and the base link's frames) by ``position``."""
    shift = pin.SE3(np.eye(3), position)
    for joint in range(1, model.njoints):
        if model.parents[joint] == 0:
            model.jointPlacements[joint] = shift * model.jointPlacements[joint]
    for index, frame in enumerate(model.frames):
        if frame.parentJoint == 0 and frame.name != "universe":
            frame.placement = shift * frame.placement
            model.frames[index] = frame  # the list hands out copies
