"""The one module that talks to PyBullet.

One :class:`Sim` holds one physics client (a :class:`BulletClient` in ``p.DIRECT`` mode,
headless) with a fixed time step; every call goes through it, so many simulations live side
by side in one process and no client id is passed around. Bodies are kept by name; robots and
tasks ask for ``sim.base_pose("plate")`` and never hold raw ids or call ``pybullet``
themselves.

Physics is stepped one ``stepSimulation`` at a time (``numSubSteps`` stays 0): joint torques
read back after each step are then the true applied torques, which the energy meter needs.

A world that is stepped uses Bullet's simple broadphase. It finds overlapping pairs in the
order of its proxy handles, and hands the handles of removed bodies out again last-freed
first; so a world cleared back to its oldest bodies (:meth:`Sim.clear`, removing newest
first) finds the same pairs in the same order as one built from scratch, and steps bitwise
like it. The default tree broadphase finds pairs in an order that depends on its history.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pybullet as p
import pybullet_data

from robocell.envs.sim_bodies import BodyControl
from robocell.envs.sim_joints import JointControl
from robocell.envs.sim_types import Contact, Light

DATA_PATH = pybullet_data.getDataPath()
# Bullet's default contact breaking threshold factor (btPersistentManifold.cpp).
DEFAULT_CONTACT_BREAKING_THRESHOLD = 0.02

Vec3 = Sequence[float]
Quat = Sequence[float]


class BulletClient:
    """One PyBullet physics client: every ``pybullet`` function, with this client's id bound.

    ``client.getBasePositionAndOrientation(body)`` calls
    ``pybullet.getBasePositionAndOrientation(body, physicsClientId=client.id)``; constants
    (``client.GEOM_BOX``) pass through. As panda-gym's ``bullet_client.BulletClient``, but
    headless only, silent on connect, and each bound function is made once and cached.
    """

    def __init__(self) -> None:
        self.id: int = p.connect(p.DIRECT)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(p, name)
        if callable(attribute):
            attribute = functools.partial(attribute, physicsClientId=self.id)
            setattr(self, name, attribute)  # found directly from now on
        return attribute


class Sim(BodyControl, JointControl):
    """A PyBullet physics client with named bodies.

    Args:
        timestep_s: fixed physics step in seconds.
        gravity: gravity along z in m/s².
        solver_iterations: constraint solver iterations per step.
        simple_broadphase: find pairs in a history-free order (see the module docstring).
            A client that is never stepped (a camera's, a planner's) can do without: making
            a world with the simple broadphase costs about 10 ms.
    """

    def __init__(
        self,
        timestep_s: float = 1.0 / 240.0,
        gravity: float = -9.81,
        solver_iterations: int = 50,
        simple_broadphase: bool = True,
    ) -> None:
        self.timestep_s = timestep_s
        self._gravity = gravity
        self._solver_iterations = solver_iterations
        self._reset_flags = p.RESET_USE_SIMPLE_BROADPHASE if simple_broadphase else 0
        self.client = BulletClient()
        self._open = True
        self._bodies: dict[str, int] = {}
        self._collision_shapes: dict[tuple, int] = {}
        self._sensors: set[tuple[str, int]] = set()
        self.visual_shapes = True
        # Counts changes of the world's state (steps, teleports): readings taken at the same
        # count are still true, so a robot reads its joints once per state.
        self.state_version = 0
        self.reset()

    # ------------------------------------------------------------------ lifecycle
    def _configure(self) -> None:
        self.client.setAdditionalSearchPath(DATA_PATH)
        self.client.setGravity(0.0, 0.0, self._gravity)
        self.client.setPhysicsEngineParameter(
            fixedTimeStep=self.timestep_s,
            numSolverIterations=self._solver_iterations,
            numSubSteps=0,
            deterministicOverlappingPairs=1,
        )

    def reset(self) -> None:
        """Remove every body and restore the engine settings (a fresh, deterministic world)."""
        self.client.resetSimulation(flags=self._reset_flags)
        self.state_version += 1
        self._bodies.clear()
        self._collision_shapes.clear()
        self._sensors.clear()
        self._configure()

    def close(self) -> None:
        """Disconnect the client; safe to call twice."""
        if self.connected:
            self.client.disconnect()
        self._open = False
        self._bodies.clear()

    @property
    def client_id(self) -> int:
        """PyBullet's number for this client (reused after a close)."""
        return self.client.id

    @property
    def connected(self) -> bool:
        """Whether the client is still connected."""
        return self._open and bool(self.client.isConnected())

    def step(self) -> None:
        """Advance the physics by one fixed time step."""
        self.client.stepSimulation()
        self.state_version += 1

    @contextmanager
    def no_rendering(self) -> Iterator[None]:
        """Batch scene construction: the renderer is off while bodies are created."""
        self.client.configureDebugVisualizer(p.COV_ENABLE_RENDERING, 0)
        try:
            yield
        finally:
            self.client.configureDebugVisualizer(p.COV_ENABLE_RENDERING, 1)

    # ------------------------------------------------------------------ base state
    def base_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """World position (m) and orientation quaternion (x, y, z, w) of a body's base."""
        pos, orn = self.client.getBasePositionAndOrientation(self.body_id(name))
        return np.asarray(pos), np.asarray(orn)

    def set_base_pose(self, name: str, position: Vec3, orientation: Quat) -> None:
        """Teleport a body's base."""
        self.client.resetBasePositionAndOrientation(
            self.body_id(name), list(position), list(orientation)
        )
        self.state_version += 1

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
        self.client.setPhysicsEngineParameter(contactBreakingThreshold=factor)

    def contacts(self, body_a: str, body_b: str | None = None) -> list[Contact]:
        """Contact points of ``body_a`` (with ``body_b`` only, when given)."""
        kwargs = {"bodyA": self.body_id(body_a)}
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
            for c in self.client.getContactPoints(**kwargs)
        ]

    def set_collision(
        self, body_a: str, body_b: str, enabled: bool, link_a: int = -1, link_b: int = -1
    ) -> None:
        """Enable or disable collisions between two bodies' links."""
        self.client.setCollisionFilterPair(
            self.body_id(body_a),
            self.body_id(body_b),
            link_a,
            link_b,
            int(enabled),
        )

    def remove_constraint(self, constraint: int) -> None:
        """Delete a constraint made by :meth:`attach_in_place`."""
        self.client.removeConstraint(constraint)

    def attach_in_place(self, parent: str, parent_link: int, child: str) -> int:
        """A fixed constraint that holds ``child`` where it is now relative to a parent link.

        The child keeps its current orientation, so grasping a part does not snap it to the
        link's axes. Constraint frames sit at the parent link's
        centre of mass and the child base's origin, as PyBullet defines them.
        """
        parent_id, child_id = self.body_id(parent), self.body_id(child)
        state = self.client.getLinkState(parent_id, parent_link, computeForwardKinematics=True)
        child_pos, child_orn = self.client.getBasePositionAndOrientation(child_id)
        inv_pos, inv_orn = self.client.invertTransform(state[0], state[1])
        rel_pos, rel_orn = self.client.multiplyTransforms(inv_pos, inv_orn, child_pos, child_orn)
        return self.client.createConstraint(
            parent_id,
            parent_link,
            child_id,
            -1,
            p.JOINT_FIXED,
            [0.0, 0.0, 0.0],
            list(rel_pos),
            [0.0, 0.0, 0.0],
            parentFrameOrientation=list(rel_orn),
        )

    def closest_points(
        self, body_a: str, body_b: str, max_distance_m: float, link_a: int | None = None
    ) -> list[Contact]:
        """Closest points between two bodies (of ``link_a`` only, when given) within a range.

        Unlike :meth:`contacts` this sees gaps, not just touching: ``distance_m`` is the
        signed gap (negative for penetration) and ``normal_force_n`` is 0.
        """
        kwargs = {}
        if link_a is not None:
            kwargs["linkIndexA"] = link_a
        points = self.client.getClosestPoints(
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
        _, _, rgba, depth, _ = self.client.getCameraImage(
            width,
            height,
            viewMatrix=list(view_matrix),
            projectionMatrix=list(projection_matrix),
            renderer=p.ER_TINY_RENDERER,
            flags=p.ER_NO_SEGMENTATION_MASK,
            **kwargs,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3]
        return rgb, np.asarray(depth, dtype=np.float32).reshape(height, width)


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
