"""The motion-control cell's env assembly: ``robocell/MotionTransfer-v0``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from robocell.cells import CellEnv, Robot, Sim, arm_spec, require_arm
from robocell.envs.motion.power import BELIEF_PARAMETERS, LINE_PARAMETERS, PowerModes
from robocell.envs.motion.task import GRIPPER, OBSERVATION_FIELDS, MotionTransferTask


class MotionTransferEnv(CellEnv):
    """Transfer parts between four stations along a cycle of point-to-point moves, in a takt.

    ## Description
    A KUKA LBR iiwa 14 (or another arm: ``robot``) with an electric gripper picks a raw part at
    the infeed, places it in the machine fixture, picks a finished part from the buffer and
    places it on the outfeed: four joint-space moves, each a jerk-limited ruckig trajectory to
    the station's IK solution, tracked in PyBullet under position control with velocity
    feed-forward. At every station the arm stands still for 0.3 s while the gripper acts. The
    cycle starts at the outfeed, where the previous one ended, and must be done within the takt;
    the time left is spent waiting. Energy is the drives' power (mechanical over η = 0.85, no
    regeneration, plus copper loss k_cu·τ²), the controller's 20 W, 35 W of drive enable power
    (amplifiers and brake release coils) while the drives are on, and 24 W of gripper power at
    the stations (:class:`~robocell.envs.motion.power.PowerModes`; the W figures are
    assumptions). Engaging the holding brakes while waiting disables the drives: no holding
    torque, no drive enable power. Brakes take 0.2 s to engage and 0.3 s to release (drives on),
    and are released by the end of the takt, so that the next cycle can start.

    ## Action Space
    ``Box(-1, 1, (2,), float32)``:
    - ``speed``: velocity scaling of the current move, s = 0.3 + 0.35 · (speed + 1), in
      [0.3, 1]: velocity limits × s, acceleration × s², jerk × s³ of the time-optimal
      profile (s = 1: full speed). Read at a move's first step and kept for the whole move;
      ignored otherwise.
    - ``brake``: > 0 while waiting after the cycle engages the holding brakes, if engaging
      and releasing them fit into the takt left; ignored otherwise.

    ## Observation Space
    ``Box(-inf, inf, (25,), float32)``, fields in ``OBSERVATION_FIELDS`` (name, unit): takt
    left (s), time the rest of the cycle takes (s: this move as planned, the later ones at
    full speed, the dwells), stations left (4 … 0),
    brakes engaged flag, joint positions (7, rad), joint speeds (7, rad/s), the next
    station's joint target minus the joint positions (7, rad; 0 once the cycle is done).

    ## Rewards
    Per step, summed; each term is in ``info["reward/<name>"]`` (dimensionless).
    - ``station``: +0.5 for each station reached within ±1 mm of its true position (after
      the gripper's 0.3 s), −1 for one reached outside (0 … +2 per episode).
    - ``takt``: −10 once, on the last step, if the cycle is not done within the takt.
    - ``success``: +10 once, on the last step of a successful episode (0 or +10).
    - ``energy``: −λ · electrical energy of the step (J); λ = ``energy_weight``, default
      0.01 J⁻¹. A cycle costs about 490–740 J at full speed without brakes: −4.9 … −7.4
      per episode.
    Not finishing costs 10 more than finishing, far more than the motion energy it saves.

    ## Starting State
    The takt is drawn uniformly in ``takt_s`` and rounded to the 0.1 s step; each station
    lies within ±``station_noise_mm`` (horizontally) of its nominal position. The arm starts
    at rest at the outfeed's joint target, drives on.

    ## Episode End
    Terminated when the takt is over (at most 90 steps, 9 s). Success: every station
    reached within ±1 mm, the cycle done within the takt. ``episode_metrics`` adds
    ``stations_reached``, ``max_position_error_mm`` (mm), ``takt_s`` (s, the episode's
    condition), ``takt_missed`` (0/1), ``motion_time_s`` (s, until the last station's
    gripper is done), ``braked_s`` (s, with the drives disabled) and ``mean_speed_scale``.

    ## Arguments
    ``energy_weight`` (λ, J⁻¹), ``takt_s`` (min, max, s, within (0, 9]),
    ``station_noise_mm`` (mm), ``render_mode`` (None or "rgb_array"), ``robot`` (the
    arm: ``"iiwa"``, the default, or ``"panda"``; the 6-joint ``"xarm6"`` is refused).

    Plant parameters (hidden from the controller; ``configure`` changes them between
    episodes): ``fixture_offset_mm`` (mm, x, y, z in the world, −5 … 5 each: the machine
    fixture moved off its taught position). The belief (the fixture calibration):
    ``believed_fixture_offset_mm`` (mm, x, y, z), where the arm takes the fixture to be;
    a part is placed where the arm goes, and counts against the fixture's true position.

    ## Version History
    - v0: initial release.
    """

    observation_fields = OBSERVATION_FIELDS
    line_parameters = LINE_PARAMETERS
    belief_parameters = BELIEF_PARAMETERS
    action_fields: ClassVar[list[dict[str, Any]]] = [
        {"name": "speed", "unit": "1", "low": -1.0, "high": 1.0, "scale": 1.0,
         "doc": "velocity scaling of the current move: 0.3 + 0.35 · (speed + 1), -1 … 1"},
        {"name": "brake", "unit": "1", "low": -1.0, "high": 1.0, "scale": 1.0,
         "doc": "> 0 while waiting after the cycle engages the holding brakes (-1 … 1)"},
    ]  # fmt: skip
    # A faulted observation: finish the moves at full speed and wait with the drives on.
    safe_action: ClassVar[list[float]] = [1.0, -1.0]
    safe_action_description = "full speed, brakes not requested"

    def __init__(
        self,
        energy_weight: float = 0.01,
        takt_s: tuple[float, float] | list[float] = (5.5, 9.0),
        station_noise_mm: float = 30.0,
        render_mode: str | None = None,
        fixture_offset_mm: tuple[float, float, float] | list[float] = (0.0, 0.0, 0.0),
        believed_fixture_offset_mm: tuple[float, float, float] | list[float] = (0.0, 0.0, 0.0),
        robot: str = "iiwa",
    ) -> None:
        arm = arm_spec(robot)
        # The observation holds 7 joints; the 6-joint xArm 6 also misses the tool-down
        # stations by 2-12 mm (its IK has no redundancy left for the orientation).
        require_arm(arm, "robocell/MotionTransfer", min_joints=7)
        values = self.check_line_values(
            fixture_offset_mm=fixture_offset_mm,
            believed_fixture_offset_mm=believed_fixture_offset_mm,
        )
        sim = Sim()
        arm_robot = Robot(sim, GRIPPER, arm)
        try:
            task = MotionTransferTask(
                sim, arm_robot, tuple(takt_s), float(station_noise_mm), PowerModes()
            )
        except ValueError:
            sim.close()
            raise
        super().__init__(sim, arm_robot, task, energy_weight, render_mode, values)
        self.apply_line_values(values)

    def apply_line_values(self, values: Mapping[str, Any]) -> None:
        """Put the fixture's true and believed offsets (mm → m) into the task."""
        v = self._line_values
        self.task.set_fixture_offsets(
            np.asarray(v["fixture_offset_mm"], float) / 1000.0,
            np.asarray(v["believed_fixture_offset_mm"], float) / 1000.0,
        )
