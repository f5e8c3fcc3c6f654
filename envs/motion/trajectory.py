"""Jerk-limited point-to-point joint moves from ruckig, with a velocity scaling.

A move goes from the reference state (position, velocity, acceleration) to a target at rest.
Scaling by s ∈ (0, 1] multiplies the velocity limits by s, the acceleration limits by s² and
the jerk limits by s³: the time-optimal profile of the scaled limits is the full-speed one
played s times slower, so s = 1 is ruckig's time-optimal move.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ruckig import InputParameter, Result, Ruckig, RuckigError, Trajectory

# Assumed acceleration and jerk limits of the LBR iiwa 14 (the data sheet gives speeds only):
# each joint reaches its rated speed in 0.25 s, and its rated acceleration in 0.1 s.
ACCELERATION_TIME_S = 0.25
JERK_TIME_S = 0.1


@dataclass(frozen=True)
class JointLimits:
    """Per-joint kinematic limits of the full-speed moves.

    Attributes:
        velocity_rad_s: speed limits (rad/s).
        acceleration_rad_s2: acceleration limits (rad/s²).
        jerk_rad_s3: jerk limits (rad/s³).
    """

    velocity_rad_s: np.ndarray
    acceleration_rad_s2: np.ndarray
    jerk_rad_s3: np.ndarray

    @classmethod
    def from_speeds(cls, velocity_rad_s: np.ndarray) -> JointLimits:
        """Limits from the rated joint speeds and the assumed acceleration and jerk times."""
        acceleration = np.asarray(velocity_rad_s, float) / ACCELERATION_TIME_S
        return cls(np.asarray(velocity_rad_s, float), acceleration, acceleration / JERK_TIME_S)


@dataclass
class JointState:
    """A reference state: positions (rad), velocities (rad/s), accelerations (rad/s²)."""

    q: np.ndarray
    qd: np.ndarray
    qdd: np.ndarray

    @classmethod
    def at_rest(cls, q: np.ndarray) -> JointState:
        """At ``q``, standing still."""
        q = np.asarray(q, float)
        return cls(q.copy(), np.zeros_like(q), np.zeros_like(q))


class MovePlanner:
    """Plans jerk-limited moves to a target at rest (ruckig, offline calculation).

    Args:
        limits: the full-speed limits.
    """

    def __init__(self, limits: JointLimits) -> None:
        self.limits = limits
        dofs = len(limits.velocity_rad_s)
        self._ruckig = Ruckig(dofs)
        self._input = InputParameter(dofs)
        self._input.target_velocity = [0.0] * dofs
        self._input.target_acceleration = [0.0] * dofs

    def plan(self, start: JointState, target_q: np.ndarray, scale: float) -> Trajectory | None:
        """The time-optimal move under the limits scaled by ``scale`` (0 < scale ≤ 1).

        None where ruckig fails to synchronise the joints (seen for states moving a few
        milliradians short of the target).
        """
        limits, inp = self.limits, self._input
        inp.current_position = start.q.tolist()
        inp.current_velocity = start.qd.tolist()
        inp.current_acceleration = start.qdd.tolist()
        inp.target_position = np.asarray(target_q, float).tolist()
        inp.max_velocity = (limits.velocity_rad_s * scale).tolist()
        inp.max_acceleration = (limits.acceleration_rad_s2 * scale**2).tolist()
        inp.max_jerk = (limits.jerk_rad_s3 * scale**3).tolist()
        trajectory = Trajectory(len(limits.velocity_rad_s))
        try:
            result = self._ruckig.calculate(inp, trajectory)
        except RuckigError:
            return None
        return trajectory if result in (Result.Working, Result.Finished) else None


def sample(trajectory: Trajectory, time_s: float) -> JointState:
    """The trajectory's state at ``time_s`` (held at its end after its duration)."""
    q, qd, qdd = trajectory.at_time(min(time_s, trajectory.duration))
    return JointState(np.asarray(q), np.asarray(qd), np.asarray(qdd))
