"""The welding cell's scripted controller: a seam tracker on the observation alone."""

from __future__ import annotations

from typing import Any

import numpy as np

from robocell.envs.weld.task import OBSERVATION_FIELDS


class ScriptedWelder:
    """A seam-tracking controller on the observation alone (no ground truth).

    Law (stateless, so it can be written as an ONNX graph):
    - standoff error e_z = sensor_standoff − 12 mm; up = clip(−0.4 · e_z, −1, 1);
    - lateral = clip(0.4 · sensor_lateral, −1, 1) (steer towards the seam);
    - travel = 0.45 (9 mm/s) once |e_z| < 1.5 mm, else 0;
    - arc on (+1) while |e_z| < 1.5 mm, the travel speed has reached 6.5 mm/s, the tracker
      sees the seam and remaining > 0, else −1 (striking the arc before the torch moves
      would weld the first millimetres too slowly).
    """

    standoff_mm = 12.0
    travel_command = 0.45

    def __init__(self, env: Any = None) -> None:
        self.index = {field["name"]: i for i, field in enumerate(OBSERVATION_FIELDS)}

    def reset(self) -> None:
        """Stateless: nothing to forget."""

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Action for one observation."""
        i = self.index
        error_z = obs[i["sensor_standoff"]] - self.standoff_mm
        settled = abs(error_z) < 1.5
        travel = self.travel_command if settled else 0.0
        lateral = np.clip(0.4 * obs[i["sensor_lateral"]], -1.0, 1.0)
        up = np.clip(-0.4 * error_z, -1.0, 1.0)
        moving = obs[i["velocity_travel"]] >= 6.5
        arc = settled and moving and obs[i["sensor_valid"]] > 0.5 and obs[i["remaining"]] > 0.0
        return np.array([travel, lateral, up, 1.0 if arc else -1.0], dtype=np.float32)
