"""In-plant calibration routines: each is an episode in the plant that measures and solves.

:func:`calibrate_vision` finds the overhead camera's pose from a chessboard target,
:func:`calibrate_weld` the wire tip off the TCP by the four-point method at a TCP-check
station. Each returns a :class:`CalibrationResult` whose ``values`` are the cell's belief
kwargs (``env.unwrapped.configure(**result.values)``). ``ROUTINES`` maps env ids to them;
:mod:`robocell.line.calibrate.files` keeps the versioned calibration file per cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robocell.envs.energy import EnergyConstants

# Trapezoidal profile of the cell's joint moves (robocell.envs.vision.pick_place): peak
# speed 1.25 × mean, so a move takes 1.25 × distance / rated speed of its slowest joint.
PEAK_OVER_MEAN_SPEED = 1.25


@dataclass
class CalibrationResult:
    """What a calibration routine found and what it cost.

    Attributes:
        values: belief kwargs of the cell -> calibrated value.
        error_before: the belief's error against the plant's truth before (by figure).
        error_after: the error of ``values`` against the plant's truth.
        duration_s: simulated time of the routine (moves, captures, probes).
        energy_j: the arm's electrical energy for the routine (see ``detail``).
        method: how the values were measured.
        detail: solver figures (reprojection error px, residual mm, point count ...).
    """

    values: dict[str, Any]
    error_before: dict[str, float]
    error_after: dict[str, float]
    duration_s: float
    energy_j: float
    method: str
    detail: dict[str, Any] = field(default_factory=dict)


def move_time_s(q_from: np.ndarray, q_to: np.ndarray, max_speed_rad_s: np.ndarray) -> float:
    """Duration (s) of a synchronised joint move at the arm's rated joint speeds (rad/s)."""
    delta = np.abs(np.asarray(q_to) - np.asarray(q_from)) / np.asarray(max_speed_rad_s)
    return float(PEAK_OVER_MEAN_SPEED * delta.max())


def standby_energy_j(duration_s: float, tool_w: float = 0.0) -> float:
    """Energy estimate (J): controller standby (and a tool) over the routine's duration.

    An estimate, not metered physics: the routine's moves are kinematic (see the routines),
    so drive power is left out; the cell's standby power dominates slow calibration moves.
    """
    return (EnergyConstants().standby_w + tool_w) * duration_s


# Imported last: the routines import CalibrationResult and the helpers above.
from robocell.line.calibrate.vision import calibrate_vision  # noqa: E402
from robocell.line.calibrate.weld import calibrate_weld  # noqa: E402

ROUTINES = {"robocell/VisionSort-v1": calibrate_vision, "robocell/WeldSeam-v1": calibrate_weld}

__all__ = ["ROUTINES", "CalibrationResult", "calibrate_vision", "calibrate_weld"]
