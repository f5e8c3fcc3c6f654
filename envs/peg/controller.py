"""The assembly cell's scripted controller: touch down, spiral search, push in.

It reads only the policy's observation (peg tip relative to the nominal hole, wrist force,
set-point lead); it never sees the true hole pose.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robocell.envs.peg.task import OBSERVATION_FIELDS


class SpiralSearchInserter:
    """Spiral-search peg insertion on the observation alone.

    Phases:
    - approach: centre over the nominal hole (P-law on x, y), descend at 20 mm/s, then at
      8 mm/s from 5 mm above the nominal mouth, until the wrist feels ≥ 3 N up (contact)
      or the tip is already 3 mm below the nominal mouth (it went straight in);
    - search: press down with 8 N (force feedback on z) and move the set-point along an
      Archimedean spiral about the nominal hole centre (3 mm pitch, 10 mm/s, out to 7 mm
      radius, then over again); the hole is found when the tip sinks 1.5 mm below the
      height of first contact;
    - insert: let x, y follow the tip (the lateral spring relaxes, the chamfer centres the
      peg) and push down with 10 N. A peg edge can come to rest on the lip where the
      chamfer meets the bore: after 0.5 s without progress the set-point wiggles in a
      1.5 mm circle about where the tip stalled while pressing only 4 N (friction then
      yields to the lateral spring); if the tip is still within 1 mm of the height of
      first contact (it sat on the top face after all), search on.

    Args:
        env: the (unwrapped) PegInsert env; only its control period is used.
    """

    contact_n = 3.0
    search_push_n = 8.0
    insert_push_n = 10.0
    force_gain_mm_per_n = 0.1
    pitch_mm = 3.0
    search_speed_mm_s = 10.0
    max_radius_mm = 7.0
    found_drop_mm = 1.5
    stall_steps = 10
    wiggle_radius_mm = 1.5
    wiggle_push_n = 4.0
    wiggle_step_rad = 0.6

    def __init__(self, env: Any = None) -> None:
        self.index = {field["name"]: i for i, field in enumerate(OBSERVATION_FIELDS)}
        period = getattr(getattr(env, "task", None), "control_period_s", 0.05)
        self.search_step_mm = self.search_speed_mm_s * period
        self.reset()

    def reset(self) -> None:
        """Start a new episode in the approach phase."""
        self.phase = "approach"
        self.contact_z_mm = 0.0
        self.theta_rad = 0.0
        self.best_z_mm = np.inf
        self.stalled = 0
        self.anchor_xy = np.zeros(2)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Action (set-point step in mm per axis, in [-1, 1]) for one observation."""
        tip = obs[[self.index["tcp_x"], self.index["tcp_y"], self.index["tcp_z"]]]
        force_z = float(obs[self.index["force_z"]])
        lead = obs[[self.index[f"setpoint_lead_{axis}"] for axis in "xyz"]]
        if self.phase == "approach":
            action = self._approach(tip, force_z)
        elif self.phase == "search":
            action = self._search(tip, force_z, lead)
        else:
            action = self._insert(tip, force_z, lead)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def _approach(self, tip: np.ndarray, force_z: float) -> np.ndarray:
        if force_z >= self.contact_n:
            self.phase, self.contact_z_mm = "search", float(tip[2])
            return np.zeros(3)
        if tip[2] < -3.0:
            self.phase, self.contact_z_mm = "insert", 0.0
            self.best_z_mm, self.anchor_xy = float(tip[2]), tip[:2].copy()
            return np.zeros(3)
        down = -1.0 if tip[2] > 5.0 else -0.4
        return np.array([-0.3 * tip[0], -0.3 * tip[1], down])

    def _press(self, force_z: float, target_n: float) -> float:
        return -self.force_gain_mm_per_n * (target_n - force_z)

    def _search(self, tip: np.ndarray, force_z: float, lead: np.ndarray) -> np.ndarray:
        if tip[2] < self.contact_z_mm - self.found_drop_mm:
            self.phase, self.best_z_mm, self.stalled = "insert", float(tip[2]), 0
            self.anchor_xy = tip[:2].copy()
            return self._insert(tip, force_z, lead)
        radius = self.pitch_mm * self.theta_rad / (2.0 * np.pi)
        self.theta_rad += self.search_step_mm / max(radius, self.pitch_mm / 2.0)
        if radius > self.max_radius_mm:
            self.theta_rad = 0.0
        target = radius * np.array([np.cos(self.theta_rad), np.sin(self.theta_rad)])
        setpoint_xy = tip[:2] + lead[:2]
        return np.r_[target - setpoint_xy, self._press(force_z, self.search_push_n)]

    def _insert(self, tip: np.ndarray, force_z: float, lead: np.ndarray) -> np.ndarray:
        if tip[2] < self.best_z_mm - 0.2:
            self.best_z_mm, self.stalled = float(tip[2]), 0
            self.anchor_xy = tip[:2].copy()
        else:
            self.stalled += 1
        press = self._press(force_z, self.insert_push_n)
        if self.stalled <= self.stall_steps:
            return np.r_[-lead[:2], press]
        if tip[2] > self.contact_z_mm - 1.0:
            self.phase = "search"  # sat on the top face after all: keep searching
            return np.r_[-lead[:2], press]
        # Press lightly while wiggling: friction then yields to the lateral spring.
        angle = self.wiggle_step_rad * (self.stalled - self.stall_steps)
        target = self.anchor_xy + self.wiggle_radius_mm * np.array([np.cos(angle), np.sin(angle)])
        return np.r_[target - (tip[:2] + lead[:2]), self._press(force_z, self.wiggle_push_n)]
