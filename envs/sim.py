"""The one module that talks to PyBullet.

One :class:`Sim` is one physics client (``p.DIRECT``, headless) with a fixed time step.
Bodies are kept by name; robots and tasks ask for ``sim.base_pose("plate")`` and never hold
raw ids or call ``pybullet`` themselves. Every call passes ``physicsClientId``, so many
simulations live side by side in one process.

Physics is stepped one ``stepSimulation`` at a time (``numSubSteps`` stays 0): joint torques
read back after each step are then the true applied torques, which the energy meter needs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pybullet as p
import pybullet_data

DATA_PATH = pybullet_data.getDataPath()
# Bullet's default contact breaking threshold factor (btPersistentManifold.cpp).
DEFAULT_CONTACT_BREAKING_THRESHOLD = 0.02

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


@dataclass(frozen=True)
class Contact:
    """One contact point between two bodies (world frame, SI units)."""

    position_on_b: np.ndarray
    normal_on_b: np.ndarray
    distance_m: float
    normal_force_n: float
    link_a: int
    link_b: int


class Sim:
    """A PyBullet physics client with named bodies.

    Args:
        timestep_s: fixed physics step in seconds.
        gravity: gravity along z in m/s².
        solver_iterations: constraint solver iterations per step.
    """

    def __init__(
        self,
        timestep_s: float = 1.0 / 240.0,
        gravity: float = -9.81,
        solver_iterations: int = 50,
    ) -> None:
        self.timestep_s = timestep_s
        self._gravity = gravity
        self._solver_iterations = solver_iterations
        self.client = p.connect(p.DIRECT)
        self._bodies: dict[str, int] = {}
        self._configure()

    # ------------------------------------------------------------------ lifecycle
    def _configure(self) -> None:
        cid = self.client
        p.setAdditionalSearchPath(DATA_PATH, physicsClientId=cid)
        p.setGravity(0.0, 0.0, self._gravity, physicsClientId=cid)
        p.setPhysicsEngineParameter(
            fixedTimeStep=self.timestep_s,
            numSolverIterations=self._solver_iterations,
            numSubSteps=0,
            deterministicOverlappingPairs=1,
            physicsClientId=cid,
        )

    def reset(self) -> None:
        """Remove every body and restore the engine settings (a fresh, deterministic world)."""
        p.resetSimulation(physicsClientId=self.client)
        self._bodies.clear()
        self._configure()

    def close(self) -> None:
        """Disconnect the client; safe to call twice."""
        if self.client >= 0 and p.isConnected(physicsClientId=self.client):
            p.disconnect(physicsClientId=self.client)
        self.client = -1
        self._bodies.clear()

    @property
    def connected(self) -> bool:
        """Whether the client is still connected."""
        return self.client >= 0 and bool(p.isConnected(physicsClientId=self.client))

    def step(self) -> None:
        """Advance the physics by one fixed time step."""
        p.stepSimulation(physicsClientId=self.client)

    @contextmanager
    def no_rendering(self) -> Iterator[None]:
        """Batch scene construction: the renderer is off while bodies are created."""
        p.configureDebugVisualizer(p.COV_ENABLE_RENDERING, 0, physicsClientId=self.client)
        try:
            yield
        finally:
            p.configureDebugVisualizer(p.COV_ENABLE_RENDERING, 1, physicsClientId=self.client)

    # ------------------------------------------------------------------ bodies
    def body_id(self, name: str) -> int:
        """The PyBullet id of a named body (KeyError names the body)."""
        try:
            return self._bodies[name]
        except KeyError:
            raise KeyError(f"no body named {name!r} in this simulation") from None

    def has_body(self, name: str) -> bool:
        """Whether a body of that name exists."""
        return name in self._bodies

    def _add(self, name: str, body: int) -> int:
        if name in self._bodies:
            raise ValueError(f"a body named {name!r} already exists")
        self._bodies[name] = body
        return body

    def load_urdf(
        self,
        name: str,
        path: str,
        position: Vec3 = (0.0, 0.0, 0.0),
        orientation: Quat = (0.0, 0.0, 0.0, 1.0),
        fixed_base: bool = False,
        self_collision: bool = False,
    ) -> int:
        """Load a URDF (absolute or relative to pybullet_data) as a named body."""
        flags = p.URDF_USE_INERTIA_FROM_FILE
        if self_collision:
            flags |= p.URDF_USE_SELF_COLLISION
        body = p.loadURDF(
            path,
            basePosition=list(position),
            baseOrientation=list(orientation),
            useFixedBase=fixed_base,
            flags=flags,
            physicsClientId=self.client,
        )
        return self._add(name, body)

    def create_box(
        self,
        name: str,
        half_extents: Vec3,
        position: Vec3,
        orientation: Quat = (0.0, 0.0, 0.0, 1.0),
        mass_kg: float = 0.0,
        rgba: Sequence[float] = (0.6, 0.6, 0.6, 1.0),
        collision: bool = True,
        lateral_friction: float | None = None,
    ) -> int:
        """A box body; ``mass_kg=0`` makes it static. Boxes have no convex-hull margin."""
        return self.create_compound(
            name,
            [BoxPart(tuple(half_extents), (0.0, 0.0, 0.0), rgba)],
            position,
            orientation,
            mass_kg,
            collision,
            lateral_friction,
        )

    def create_compound(
        self,
        name: str,
        parts: Sequence[BoxPart],
        position: Vec3,
        orientation: Quat = (0.0, 0.0, 0.0, 1.0),
        mass_kg: float = 0.0,
        collision: bool = True,
        lateral_friction: float | None = None,
    ) -> int:
        """One rigid body made of boxes placed in its frame (e.g. a block with a hole)."""
        cid = self.client
        kwargs = {"physicsClientId": cid}
        half = [list(part.half_extents) for part in parts]
        offsets = [list(part.offset) for part in parts]
        orientations = [list(part.orientation) for part in parts]
        visual = p.createVisualShapeArray(
            shapeTypes=[p.GEOM_BOX] * len(parts),
            halfExtents=half,
            visualFramePositions=offsets,
            visualFrameOrientations=orientations,
            rgbaColors=[list(part.rgba) for part in parts],
            **kwargs,
        )
        collision_shape = -1
        if collision:
            collision_shape = p.createCollisionShapeArray(
                shapeTypes=[p.GEOM_BOX] * len(parts),
                halfExtents=half,
                collisionFramePositions=offsets,
                collisionFrameOrientations=orientations,
                **kwargs,
            )
        body = p.createMultiBody(
            baseMass=mass_kg,
            baseCollisionShapeIndex=collision_shape,
            baseVisualShapeIndex=visual,
            basePosition=list(position),
            baseOrientation=list(orientation),
            **kwargs,
        )
        self._set_contact_params(body, lateral_friction)
        return self._add(name, body)

    def create_cylinder(
        self,
        name: str,
        radius_m: float,
        length_m: float,
        position: Vec3,
        orientation: Quat = (0.0, 0.0, 0.0, 1.0),
        mass_kg: float = 0.0,
        rgba: Sequence[float] = (0.6, 0.6, 0.6, 1.0),
        collision: bool = True,
        lateral_friction: float | None = None,
    ) -> int:
        """A cylinder body with its axis along the body's z-axis."""
        cid = self.client
        visual = p.createVisualShape(
            p.GEOM_CYLINDER,
            radius=radius_m,
            length=length_m,
            rgbaColor=list(rgba),
            physicsClientId=cid,
        )
        collision_shape = -1
        if collision:
            collision_shape = p.createCollisionShape(
                p.GEOM_CYLINDER, radius=radius_m, height=length_m, physicsClientId=cid
            )
        body = p.createMultiBody(
            baseMass=mass_kg,
            baseCollisionShapeIndex=collision_shape,
            baseVisualShapeIndex=visual,
            basePosition=list(position),
            baseOrientation=list(orientation),
            physicsClientId=cid,
        )
        self._set_contact_params(body, lateral_friction)
        return self._add(name, body)

    def create_sphere_marker(
        self, name: str, radius_m: float, position: Vec3, rgba: Sequence[float]
    ) -> int:
        """A visual-only sphere (no collision, no mass), e.g. a target marker."""
        visual = p.createVisualShape(
            p.GEOM_SPHERE, radius=radius_m, rgbaColor=list(rgba), physicsClientId=self.client
        )
        body = p.createMultiBody(
            baseMass=0.0,
            baseVisualShapeIndex=visual,
            basePosition=list(position),
            physicsClientId=self.client,
        )
        return self._add(name, body)

    def _set_contact_params(self, body: int, lateral_friction: float | None) -> None:
        if lateral_friction is not None:
            p.changeDynamics(
                body, -1, lateralFriction=lateral_friction, physicsClientId=self.client
            )

    def remove_body(self, name: str) -> None:
        """Delete a named body from the world."""
        p.removeBody(self._bodies.pop(name), physicsClientId=self.client)

    def set_color(self, name: str, rgba: Sequence[float], link: int = -1) -> None:
        """Change a body's (or link's) colour."""
        p.changeVisualShape(
            self.body_id(name), link, rgbaColor=list(rgba), physicsClientId=self.client
        )

    def change_dynamics(self, name: str, link: int = -1, **kwargs: float) -> None:
        """Pass-through to ``changeDynamics`` for a named body's link."""
        p.changeDynamics(self.body_id(name), link, physicsClientId=self.client, **kwargs)

    def allow_sleep(self, name: str, asleep_now: bool = False) -> None:
        """Let a free body fall asleep when it comes to rest (Bullet's deactivation).

        A resting body then costs no collision work until something touches it, which
        wakes it up; the result stays deterministic. ``asleep_now`` puts a body that was
        created at rest to sleep at once.
        """
        body = self.body_id(name)
        cid = self.client
        state = p.ACTIVATION_STATE_ENABLE_SLEEPING
        p.changeDynamics(body, -1, activationState=state, physicsClientId=cid)
        if asleep_now:
            p.changeDynamics(
                body, -1, activationState=p.ACTIVATION_STATE_SLEEP, physicsClientId=cid
            )

    def wake_up(self, name: str) -> None:
        """Wake a sleeping body (e.g. before constraining it)."""
        p.changeDynamics(
            self.body_id(name),
            -1,
            activationState=p.ACTIVATION_STATE_WAKE_UP,
            physicsClientId=self.client,
        )

    # ------------------------------------------------------------------ base state
    def base_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """World position (m) and orientation quaternion (x, y, z, w) of a body's base."""
        pos, orn = p.getBasePositionAndOrientation(self.body_id(name), physicsClientId=self.client)
        return np.asarray(pos), np.asarray(orn)

    def set_base_pose(self, name: str, position: Vec3, orientation: Quat) -> None:
        """Teleport a body's base."""
        p.resetBasePositionAndOrientation(
            self.body_id(name), list(position), list(orientation), physicsClientId=self.client
        )

    def base_velocity(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Linear (m/s) and angular (rad/s) velocity of a body's base."""
        lin, ang = p.getBaseVelocity(self.body_id(name), physicsClientId=self.client)
        return np.asarray(lin), np.asarray(ang)

    def set_base_velocity(self, name: str, linear: Vec3, angular: Vec3) -> None:
        """Set a body's base velocity."""
        p.resetBaseVelocity(
            self.body_id(name), list(linear), list(angular), physicsClientId=self.client
        )

    # ------------------------------------------------------------------ joints and links
    def joints(self, name: str) -> list[JointInfo]:
        """Every joint of a body, in index order."""
        body = self.body_id(name)
        infos = []
        for index in range(p.getNumJoints(body, physicsClientId=self.client)):
            info = p.getJointInfo(body, index, physicsClientId=self.client)
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
        states = p.getJointStates(self.body_id(name), joints, physicsClientId=self.client)
        q = np.fromiter((s[0] for s in states), float, len(states))
        qd = np.fromiter((s[1] for s in states), float, len(states))
        tau = np.fromiter((s[3] for s in states), float, len(states))
        return q, qd, tau

    def raw_joint_states(self, name: str, joints: Sequence[int]) -> tuple:
        """``getJointStates`` as PyBullet returns it (for hot loops that batch the parsing)."""
        return p.getJointStates(self._bodies[name], joints, physicsClientId=self.client)

    def reset_joints(self, name: str, joints: Sequence[int], positions: Sequence[float]) -> None:
        """Teleport joints to positions with zero velocity."""
        body = self.body_id(name)
        for joint, position in zip(joints, positions, strict=True):
            p.resetJointState(body, joint, float(position), 0.0, physicsClientId=self.client)

    def enable_torque_sensor(self, name: str, joint: int) -> None:
        """Turn on the 6-axis reaction force/torque readout of a joint."""
        p.enableJointForceTorqueSensor(self.body_id(name), joint, True, physicsClientId=self.client)

    def joint_reaction_wrench(self, name: str, joint: int) -> np.ndarray:
        """Reaction wrench (Fx, Fy, Fz, Mx, My, Mz) in N and N·m at a sensed joint."""
        state = p.getJointState(self.body_id(name), joint, physicsClientId=self.client)
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
            p.setJointMotorControlArray(
                body,
                list(joints),
                p.POSITION_CONTROL,
                targetPositions=list(positions),
                forces=list(forces),
                physicsClientId=self.client,
            )
            return
        for joint, position, force, velocity in zip(
            joints, positions, forces, max_velocities, strict=True
        ):
            p.setJointMotorControl2(
                body,
                joint,
                p.POSITION_CONTROL,
                targetPosition=float(position),
                force=float(force),
                maxVelocity=float(velocity),
                physicsClientId=self.client,
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
        p.setJointMotorControlArray(
            self.body_id(name),
            list(joints),
            p.POSITION_CONTROL,
            targetPositions=list(positions),
            targetVelocities=list(velocities),
            forces=list(forces),
            positionGains=[position_gain] * n,
            velocityGains=[velocity_gain] * n,
            physicsClientId=self.client,
        )

    def disable_motors(self, name: str, joints: Sequence[int]) -> None:
        """Switch off the default velocity motors so that torque control acts alone."""
        p.setJointMotorControlArray(
            self.body_id(name),
            list(joints),
            p.VELOCITY_CONTROL,
            forces=[0.0] * len(joints),
            physicsClientId=self.client,
        )

    def set_torques(self, name: str, joints: Sequence[int], torques: Sequence[float]) -> None:
        """Torque-controlled joints (call :meth:`disable_motors` once before)."""
        p.setJointMotorControlArray(
            self.body_id(name),
            list(joints),
            p.TORQUE_CONTROL,
            forces=list(torques),
            physicsClientId=self.client,
        )

    def link_pose(self, name: str, link: int) -> tuple[np.ndarray, np.ndarray]:
        """World position and orientation of a link's URDF frame."""
        state = p.getLinkState(
            self.body_id(name), link, computeForwardKinematics=True, physicsClientId=self.client
        )
        return np.asarray(state[4]), np.asarray(state[5])

    def link_pose_velocity(
        self, name: str, link: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """World position, orientation, linear and angular velocity of a link, in one call."""
        state = p.getLinkState(
            self.body_id(name),
            link,
            computeLinkVelocity=True,
            computeForwardKinematics=True,
            physicsClientId=self.client,
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
        solution = p.calculateInverseKinematics(
            self.body_id(name),
            link,
            list(position),
            list(orientation),
            maxNumIterations=max_iterations,
            residualThreshold=threshold,
            physicsClientId=self.client,
        )
        return np.asarray(solution)

    def jacobian(
        self, name: str, link: int, q: Sequence[float], local_point: Vec3 = (0.0, 0.0, 0.0)
    ) -> tuple[np.ndarray, np.ndarray]:
        """Linear and angular Jacobians (3 × n each) of a point on a link at joint state q."""
        zeros = [0.0] * len(q)
        lin, ang = p.calculateJacobian(
            self.body_id(name),
            link,
            list(local_point),
            list(q),
            zeros,
            zeros,
            physicsClientId=self.client,
        )
        return np.asarray(lin), np.asarray(ang)

    def inverse_dynamics(
        self, name: str, q: Sequence[float], qd: Sequence[float], qdd: Sequence[float]
    ) -> np.ndarray:
        """Joint torques (N·m) for the given motion, gravity and Coriolis terms included."""
        tau = p.calculateInverseDynamics(
            self.body_id(name), list(q), list(qd), list(qdd), physicsClientId=self.client
        )
        return np.asarray(tau)

    def mass_matrix(self, name: str, q: Sequence[float]) -> np.ndarray:
        """Joint-space inertia matrix M(q) (n × n, kg·m²) of a fixed-base body."""
        matrix = p.calculateMassMatrix(self.body_id(name), list(q), physicsClientId=self.client)
        return np.asarray(matrix)

    # ------------------------------------------------------------------ contacts
    def set_contact_breaking_threshold(self, factor: float) -> None:
        """Set Bullet's contact breaking threshold — for the WHOLE PROCESS, not this client.

        Bullet keeps a contact point until the bodies separate or slide by the threshold,
        which is ``factor`` × the shape's bounding radius (default 0.02: about 1 mm for a
        100 mm part). Near sub-millimetre clearances such stale points can hold a part on
        an edge it has already left. The value is a global of the Bullet library and is
        read whenever contacts are made or refreshed, so a cell that needs another value
        sets it for its own physics steps and restores
        :data:`DEFAULT_CONTACT_BREAKING_THRESHOLD` afterwards.
        """
        p.setPhysicsEngineParameter(contactBreakingThreshold=factor, physicsClientId=self.client)

    def contacts(self, body_a: str, body_b: str | None = None) -> list[Contact]:
        """Contact points of ``body_a`` (with ``body_b`` only, when given)."""
        kwargs = {"bodyA": self.body_id(body_a), "physicsClientId": self.client}
        if body_b is not None:
            kwargs["bodyB"] = self.body_id(body_b)
        return [
            Contact(
                position_on_b=np.asarray(c[6]),
                normal_on_b=np.asarray(c[7]),
                distance_m=c[8],
                normal_force_n=c[9],
                link_a=c[3],
                link_b=c[4],
            )
            for c in p.getContactPoints(**kwargs)
        ]

    def set_collision(
        self, body_a: str, body_b: str, enabled: bool, link_a: int = -1, link_b: int = -1
    ) -> None:
        """Enable or disable collisions between two bodies' links."""
        p.setCollisionFilterPair(
            self.body_id(body_a),
            self.body_id(body_b),
            link_a,
            link_b,
            int(enabled),
            physicsClientId=self.client,
        )

    def fix_to(self, parent: str, parent_link: int, child: str, child_offset: Vec3) -> int:
        """A fixed constraint holding ``child`` at an offset in the parent link's frame."""
        return p.createConstraint(
            self.body_id(parent),
            parent_link,
            self.body_id(child),
            -1,
            p.JOINT_FIXED,
            [0.0, 0.0, 0.0],
            list(child_offset),
            [0.0, 0.0, 0.0],
            physicsClientId=self.client,
        )

    def remove_constraint(self, constraint: int) -> None:
        """Delete a constraint made by :meth:`fix_to`."""
        p.removeConstraint(constraint, physicsClientId=self.client)

    def attach_in_place(self, parent: str, parent_link: int, child: str) -> int:
        """A fixed constraint that holds ``child`` where it is now relative to a parent link.

        Unlike :meth:`fix_to` the child keeps its current orientation, so grasping a part
        does not snap it to the link's axes. Constraint frames sit at the parent link's
        centre of mass and the child base's origin, as PyBullet defines them.
        """
        cid = self.client
        parent_id, child_id = self.body_id(parent), self.body_id(child)
        state = p.getLinkState(
            parent_id, parent_link, computeForwardKinematics=True, physicsClientId=cid
        )
        child_pos, child_orn = p.getBasePositionAndOrientation(child_id, physicsClientId=cid)
        inv_pos, inv_orn = p.invertTransform(state[0], state[1])
        rel_pos, rel_orn = p.multiplyTransforms(inv_pos, inv_orn, child_pos, child_orn)
        return p.createConstraint(
            parent_id,
            parent_link,
            child_id,
            -1,
            p.JOINT_FIXED,
            [0.0, 0.0, 0.0],
            list(rel_pos),
            [0.0, 0.0, 0.0],
            parentFrameOrientation=list(rel_orn),
            physicsClientId=cid,
        )

    def closest_points(
        self, body_a: str, body_b: str, max_distance_m: float, link_a: int | None = None
    ) -> list[Contact]:
        """Closest points between two bodies (of ``link_a`` only, when given) within a range.

        Unlike :meth:`contacts` this sees gaps, not just touching: ``distance_m`` is the
        signed gap (negative for penetration) and ``normal_force_n`` is 0.
        """
        kwargs = {"physicsClientId": self.client}
        if link_a is not None:
            kwargs["linkIndexA"] = link_a
        points = p.getClosestPoints(
            self.body_id(body_a), self.body_id(body_b), max_distance_m, **kwargs
        )
        return [
            Contact(
                position_on_b=np.asarray(c[6]),
                normal_on_b=np.asarray(c[7]),
                distance_m=c[8],
                normal_force_n=0.0,
                link_a=c[3],
                link_b=c[4],
            )
            for c in points
        ]

    # ------------------------------------------------------------------ camera
    def render(
        self,
        width: int,
        height: int,
        view_matrix: Sequence[float],
        projection_matrix: Sequence[float],
    ) -> np.ndarray:
        """An RGB image (height × width × 3, uint8) from the TinyRenderer (headless)."""
        return self.camera_image(width, height, view_matrix, projection_matrix)[0]

    def camera_image(
        self,
        width: int,
        height: int,
        view_matrix: Sequence[float],
        projection_matrix: Sequence[float],
        light: Light | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """RGB (height × width × 3, uint8) and depth buffer (height × width, float32).

        TinyRenderer, headless. The depth buffer holds PyBullet's non-linear values in
        [0, 1]; pixels where nothing was drawn read 1.0. ``light`` sets the lighting.
        """
        kwargs = light.render_kwargs() if light is not None else {}
        _, _, rgba, depth, _ = p.getCameraImage(
            width,
            height,
            viewMatrix=list(view_matrix),
            projectionMatrix=list(projection_matrix),
            renderer=p.ER_TINY_RENDERER,
            flags=p.ER_NO_SEGMENTATION_MASK,
            physicsClientId=self.client,
            **kwargs,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3]
        return rgb, np.asarray(depth, dtype=np.float32).reshape(height, width)


@dataclass(frozen=True)
class Light:
    """TinyRenderer lighting: a directional light plus ambient, diffuse, specular weights.

    Args:
        direction: vector pointing from the scene towards the light (world frame).
        color: light colour (RGB, 0–1).
        ambient: ambient coefficient.
        diffuse: diffuse (Lambert) coefficient.
        specular: specular coefficient.
    """

    direction: tuple[float, float, float] = (0.3, 0.2, 1.0)
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.6
    diffuse: float = 0.35
    specular: float = 0.05

    def render_kwargs(self) -> dict[str, Any]:
        """The matching ``getCameraImage`` keyword arguments."""
        return {
            "lightDirection": list(self.direction),
            "lightColor": list(self.color),
            "lightAmbientCoeff": self.ambient,
            "lightDiffuseCoeff": self.diffuse,
            "lightSpecularCoeff": self.specular,
        }


@dataclass(frozen=True)
class BoxPart:
    """One box of a compound body: half extents and offset in the body frame (m), colour.

    ``orientation`` (quaternion x, y, z, w, in the body frame) tilts the box, e.g. to make
    the sloped face of a chamfer.
    """

    half_extents: tuple[float, float, float]
    offset: tuple[float, float, float]
    rgba: Sequence[float] = (0.6, 0.6, 0.6, 1.0)
    orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)


def view_matrix(eye: Vec3, target: Vec3, up: Vec3) -> list[float]:
    """A camera view matrix (column-major, as PyBullet uses)."""
    return list(p.computeViewMatrix(list(eye), list(target), list(up)))


def projection_matrix(fov_deg: float, aspect: float, near_m: float, far_m: float) -> list[float]:
    """A perspective projection matrix (column-major, as PyBullet uses)."""
    return list(p.computeProjectionMatrixFOV(fov_deg, aspect, near_m, far_m))


def quat_from_euler(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Quaternion (x, y, z, w) from roll, pitch, yaw in rad."""
    return np.asarray(p.getQuaternionFromEuler([roll, pitch, yaw]))


def rotation_matrix(quat: Quat) -> np.ndarray:
    """3 × 3 rotation matrix of a quaternion (x, y, z, w)."""
    return np.asarray(p.getMatrixFromQuaternion(list(quat))).reshape(3, 3)
