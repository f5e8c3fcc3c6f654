"""Joints, motors, kinematics and dynamics of articulated bodies: the arm side of :class:`Sim`.

A mixin of :class:`robocell.envs.sim.Sim`, kept in its own file: it calls PyBullet only
through ``self.client`` (the Sim's ``BulletClient``) on bodies named by ``self.body_id``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pybullet as p

if TYPE_CHECKING:
    from robocell.envs.sim import BulletClient

Vec3 = Sequence[float]
Quat = Sequence[float]


@dataclass(frozen=True)
class JointInfo:
    """Static description of one joint, from ``getJointInfo``."""

    index: int
    name: str
    kind: int
    lower: float
    upper: float
    max_force: float
    max_velocity: float
    link_name: str


class JointControl:
    """Joint and link access for a :class:`Sim` (which provides ``client`` and ``body_id``)."""

    client: BulletClient
    body_id: Callable[[str], int]
    _bodies: dict[str, int]
    _sensors: set[tuple[str, int]]
    state_version: int

    def joints(self, name: str) -> list[JointInfo]:
        """Every joint of a body, in index order."""
        body = self.body_id(name)
        infos = []
        for index in range(self.client.getNumJoints(body)):
            info = self.client.getJointInfo(body, index)
            infos.append(
                JointInfo(
                    index=index,
                    name=info[1].decode(),
                    kind=info[2],
                    lower=info[8],
                    upper=info[9],
                    max_force=info[10],
                    max_velocity=info[11],
                    link_name=info[12].decode(),
                )
            )
        return infos

    def link_index(self, name: str, link_name: str) -> int:
        """Index of the link called ``link_name`` (-1 for the base)."""
        for joint in self.joints(name):
            if joint.link_name == link_name:
                return joint.index
        raise KeyError(f"body {name!r} has no link named {link_name!r}")

    def joint_states(self, name: str, joints: Sequence[int]) -> tuple[np.ndarray, ...]:
        """Positions (rad), velocities (rad/s) and applied motor torques (N·m) of joints."""
        states = self.client.getJointStates(self.body_id(name), joints)
        q = np.fromiter((s[0] for s in states), float, len(states))
        qd = np.fromiter((s[1] for s in states), float, len(states))
        tau = np.fromiter((s[3] for s in states), float, len(states))
        return q, qd, tau

    def raw_joint_states(self, name: str, joints: Sequence[int]) -> tuple:
        """``getJointStates`` as PyBullet returns it (for hot loops that batch the parsing)."""
        return self.client.getJointStates(self._bodies[name], joints)

    def joint_state_reader(self, name: str, joints: Sequence[int]) -> Callable[[], tuple]:
        """:meth:`raw_joint_states` of these joints bound once: one call per read, for hot loops."""
        return functools.partial(self.client.getJointStates, self.body_id(name), list(joints))

    def torque_commander(self, name: str, joints: Sequence[int]) -> Callable[[list[float]], None]:
        """:meth:`set_torques` of these joints bound once; call it with a list of N·m."""
        control = functools.partial(
            self.client.setJointMotorControlArray,
            self.body_id(name),
            list(joints),
            self.client.TORQUE_CONTROL,
        )
        return lambda torques: control(forces=torques)

    def reset_joints(self, name: str, joints: Sequence[int], positions: Sequence[float]) -> None:
        """Teleport joints to positions with zero velocity."""
        values = [[float(position)] for position in positions]
        if len(values) != len(joints):
            raise ValueError(f"{len(joints)} joints but {len(values)} positions")
        self.client.resetJointStatesMultiDof(
            self.body_id(name), list(joints), values, [[0.0]] * len(values)
        )
        self.state_version += 1

    def enable_torque_sensor(self, name: str, joint: int) -> None:
        """Turn on the 6-axis reaction force/torque readout of a joint (once per body)."""
        if (name, joint) not in self._sensors:
            self.client.enableJointForceTorqueSensor(self.body_id(name), joint, True)
            self._sensors.add((name, joint))

    def joint_reaction_wrench(self, name: str, joint: int) -> np.ndarray:
        """Reaction wrench (Fx, Fy, Fz, Mx, My, Mz) in N and N·m at a sensed joint."""
        state = self.client.getJointState(self.body_id(name), joint)
        return np.asarray(state[2])

    def set_position_targets(
        self,
        name: str,
        joints: Sequence[int],
        positions: Sequence[float],
        forces: Sequence[float],
        max_velocities: Sequence[float] | None = None,
    ) -> None:
        """Position-controlled motors: drive joints to positions with bounded force."""
        body = self.body_id(name)
        if max_velocities is None:
            self.client.setJointMotorControlArray(
                body,
                list(joints),
                p.POSITION_CONTROL,
                targetPositions=_floats(positions),
                forces=_floats(forces),
            )
            return
        for joint, position, force, velocity in zip(
            joints, positions, forces, max_velocities, strict=True
        ):
            self.client.setJointMotorControl2(
                body,
                joint,
                p.POSITION_CONTROL,
                targetPosition=float(position),
                force=float(force),
                maxVelocity=float(velocity),
            )

    def track_joint_targets(
        self,
        name: str,
        joints: Sequence[int],
        positions: Sequence[float],
        velocities: Sequence[float],
        forces: Sequence[float],
        position_gain: float,
        velocity_gain: float = 1.0,
    ) -> None:
        """Position control along a trajectory: target positions plus velocity feed-forward.

        PyBullet's motor drives ``position_gain · (q* − q) + velocity_gain · (q̇* − q̇)`` to
        zero with bounded force; the feed-forward removes the lag of plain position targets.
        """
        n = len(joints)
        self.client.setJointMotorControlArray(
            self.body_id(name),
            list(joints),
            p.POSITION_CONTROL,
            targetPositions=_floats(positions),
            targetVelocities=_floats(velocities),
            forces=_floats(forces),
            positionGains=[position_gain] * n,
            velocityGains=[velocity_gain] * n,
        )

    def disable_motors(self, name: str, joints: Sequence[int], friction_nm: float = 0.0) -> None:
        """Switch off the default velocity motors so that torque control acts alone.

        ``friction_nm`` > 0 leaves each a zero-speed motor of that much torque: Coulomb
        friction in the joint (the usual PyBullet idiom).
        """
        self.client.setJointMotorControlArray(
            self.body_id(name),
            list(joints),
            p.VELOCITY_CONTROL,
            forces=[float(friction_nm)] * len(joints),
        )

    def set_torques(self, name: str, joints: Sequence[int], torques: Sequence[float]) -> None:
        """Torque-controlled joints (call :meth:`disable_motors` once before)."""
        self.client.setJointMotorControlArray(
            self.body_id(name),
            list(joints),
            p.TORQUE_CONTROL,
            forces=list(torques),
        )

    def link_pose(self, name: str, link: int) -> tuple[np.ndarray, np.ndarray]:
        """World position and orientation of a link's URDF frame."""
        state = self.client.getLinkState(self.body_id(name), link, computeForwardKinematics=True)
        return np.asarray(state[4]), np.asarray(state[5])

    def link_pose_velocity(
        self, name: str, link: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """World position, orientation, linear and angular velocity of a link, in one call."""
        state = self.client.getLinkState(
            self.body_id(name),
            link,
            computeLinkVelocity=True,
            computeForwardKinematics=True,
        )
        pos, orn, lin, ang = (np.asarray(state[i]) for i in (4, 5, 6, 7))
        return pos, orn, lin, ang

    def inverse_kinematics(
        self,
        name: str,
        link: int,
        position: Vec3,
        orientation: Quat,
        max_iterations: int = 100,
        threshold: float = 1e-5,
    ) -> np.ndarray:
        """Joint positions that put ``link`` at the pose, iterating from the current state.

        PyBullet's null-space variant (rest poses and joint ranges) leaves a millimetre-level
        residual on the iiwa, so the plain solver is used; callers clip to joint limits.
        """
        solution = self.client.calculateInverseKinematics(
            self.body_id(name),
            link,
            list(position),
            list(orientation),
            maxNumIterations=max_iterations,
            residualThreshold=threshold,
        )
        return np.asarray(solution)

    def jacobian(
        self, name: str, link: int, q: Sequence[float], local_point: Vec3 = (0.0, 0.0, 0.0)
    ) -> tuple[np.ndarray, np.ndarray]:
        """Linear and angular Jacobians (3 × n each) of a point on a link at joint state q."""
        zeros = [0.0] * len(q)
        lin, ang = self.client.calculateJacobian(
            self.body_id(name),
            link,
            list(local_point),
            list(q),
            zeros,
            zeros,
        )
        return np.asarray(lin), np.asarray(ang)

    def inverse_dynamics(
        self, name: str, q: Sequence[float], qd: Sequence[float], qdd: Sequence[float]
    ) -> np.ndarray:
        """Joint torques (N·m) for the given motion, gravity and Coriolis terms included."""
        tau = self.client.calculateInverseDynamics(self.body_id(name), list(q), list(qd), list(qdd))
        return np.asarray(tau)

    def mass_matrix(self, name: str, q: Sequence[float]) -> np.ndarray:
        """Joint-space inertia matrix M(q) (n × n, kg·m²) of a fixed-base body."""
        matrix = self.client.calculateMassMatrix(self.body_id(name), list(q))
        return np.asarray(matrix)


def _floats(values: Sequence[float] | np.ndarray) -> list[float]:
    """Plain Python floats: PyBullet parses them faster than numpy scalars (same values)."""
    return values.tolist() if isinstance(values, np.ndarray) else [float(v) for v in values]
