"""The motion cell's scripted controller: the baseline every policy is measured against."""

from __future__ import annotations

from typing import Any

import numpy as np


class FullSpeedStandby:
    """Time-optimal jerk-limited moves at full speed, then waiting in standby, drives on.

    What a robot program does by default: every move at 100 % override (ruckig's time-optimal
    profile), then it waits for the next takt with the drives enabled, holding its position;
    it never asks for the brakes.
    """

    def __init__(self, env: Any = None) -> None:
        """It needs nothing of the env."""

    def reset(self) -> None:
        """Stateless: nothing to forget."""

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Full speed, no brakes."""
        return np.array([1.0, -1.0], dtype=np.float32)
