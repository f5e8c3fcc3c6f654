"""Named bodies of a :class:`Sim`: loading, building from boxes, removing, their dynamics.

A mixin of :class:`robocell.envs.sim.Sim`, kept in its own file: it calls PyBullet only
through ``self.client`` (the Sim's ``BulletClient``, which also passes PyBullet's constants
through), so that :mod:`robocell.envs.sim` stays the one module that imports PyBullet.

A world is rebuilt every episode, so shapes are made once: a box compound's collision shape
is kept per geometry and reused by every body of that geometry (PyBullet never frees the
shapes of a removed body), and visual shapes are made only when :attr:`visual_shapes` is on
(someone renders the physics client).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from robocell.envs.sim_types import BoxPart

if TYPE_CHECKING:
    from robocell.envs.sim import BulletClient

Vec3 = Sequence[float]
Quat = Sequence[float]


class BodyControl:
    """Bodies by name for a :class:`Sim` (which provides ``client``)."""

    client: BulletClient
    _bodies: dict[str, int]
    _collision_shapes: dict[tuple, int]
    _sensors: set[tuple[str, int]]
    visual_shapes: bool
    state_version: int

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
        flags = self.client.URDF_USE_INERTIA_FROM_FILE
        if self_collision:
            flags |= self.client.URDF_USE_SELF_COLLISION
        body = self.client.loadURDF(
            path,
            basePosition=list(position),
            baseOrientation=list(orientation),
            useFixedBase=fixed_base,
            flags=flags,
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
        visual = self._visual_shape(parts) if self.visual_shapes else -1
        body = self.client.createMultiBody(
            baseMass=mass_kg,
            baseCollisionShapeIndex=self._collision_shape(parts) if collision else -1,
            baseVisualShapeIndex=visual,
            basePosition=list(position),
            baseOrientation=list(orientation),
        )
        self._set_contact_params(body, lateral_friction)
        return self._add(name, body)

    def _collision_shape(self, parts: Sequence[BoxPart]) -> int:
        key = tuple((part.half_extents, part.offset, part.orientation) for part in parts)
        if key not in self._collision_shapes:
            self._collision_shapes[key] = self.client.createCollisionShapeArray(
                shapeTypes=[self.client.GEOM_BOX] * len(parts),
                halfExtents=[list(part.half_extents) for part in parts],
                collisionFramePositions=[list(part.offset) for part in parts],
                collisionFrameOrientations=[list(part.orientation) for part in parts],
            )
        return self._collision_shapes[key]

    def _visual_shape(self, parts: Sequence[BoxPart]) -> int:
        return self.client.createVisualShapeArray(
            shapeTypes=[self.client.GEOM_BOX] * len(parts),
            halfExtents=[list(part.half_extents) for part in parts],
            visualFramePositions=[list(part.offset) for part in parts],
            visualFrameOrientations=[list(part.orientation) for part in parts],
            rgbaColors=[list(part.rgba) for part in parts],
        )

    def _set_contact_params(self, body: int, lateral_friction: float | None) -> None:
        if lateral_friction is not None:
            self.client.changeDynamics(body, -1, lateralFriction=lateral_friction)

    def exclude_self_pairs(self, name: str) -> None:
        """Keep a body's links out of each other's broadphase pairs (no self-collision).

        Bodies loaded without self-collision never collide with themselves anyway; without
        their pairs the pair cache of a :meth:`clear`-ed world is as empty as a fresh one's.
        """
        body = self.body_id(name)
        links = range(-1, self.client.getNumJoints(body))
        for link_a in links:
            for link_b in links:
                if link_a < link_b:
                    self.client.setCollisionFilterPair(body, body, link_a, link_b, 0)

    def remove_body(self, name: str) -> None:
        """Delete a named body from the world."""
        self.client.removeBody(self._bodies.pop(name))
        self._sensors = {sensor for sensor in self._sensors if sensor[0] != name}

    def clear(self, keep: Sequence[str] = ()) -> None:
        """Remove every constraint and every body but ``keep``, newest first.

        The kept bodies must be the oldest ones. Removing the rest newest first hands their
        ids out again in the same order, and leaves no contact, pair or constraint that a
        removed body took part in: what is rebuilt then steps as in a fresh world.
        """
        names = list(self._bodies)
        if names[: len(keep)] != list(keep):
            raise ValueError(f"kept bodies {keep} must be the first created, got {names}")
        for index in reversed(range(self.client.getNumConstraints())):
            self.client.removeConstraint(self.client.getConstraintUniqueId(index))
        for name in reversed(names[len(keep) :]):
            self.remove_body(name)
        self.state_version += 1

    def set_color(self, name: str, rgba: Sequence[float], link: int = -1) -> None:
        """Change a body's (or link's) colour."""
        self.client.changeVisualShape(self.body_id(name), link, rgbaColor=list(rgba))

    def change_dynamics(self, name: str, link: int = -1, **kwargs: float) -> None:
        """Pass-through to ``changeDynamics`` for a named body's link."""
        self.client.changeDynamics(self.body_id(name), link, **kwargs)

    def allow_sleep(self, name: str, asleep_now: bool = False) -> None:
        """Let a free body fall asleep when it comes to rest (Bullet's deactivation).

        A resting body then costs no collision work until something touches it, which
        wakes it up; the result stays deterministic. ``asleep_now`` puts a body that was
        created at rest to sleep at once.
        """
        body = self.body_id(name)
        state = self.client.ACTIVATION_STATE_ENABLE_SLEEPING
        self.client.changeDynamics(body, -1, activationState=state)
        if asleep_now:
            self.client.changeDynamics(body, -1, activationState=self.client.ACTIVATION_STATE_SLEEP)

    def wake_up(self, name: str) -> None:
        """Wake a sleeping body (e.g. before constraining it)."""
        self.client.changeDynamics(
            self.body_id(name),
            -1,
            activationState=self.client.ACTIVATION_STATE_WAKE_UP,
        )
