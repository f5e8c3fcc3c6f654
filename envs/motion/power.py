"""The motion cell's power modes, brake timing, and plant parameters.

Power modes as in the energy models of robotic cells (Bukata et al., "Energy optimization
of robotic cells", IEEE TII 13(1), 2017; Meike & Ribickis, ICAR 2011; Paryanto et al.,
Int. J. Adv. Manuf. Technol. 2015): with the drives enabled the servo amplifiers are biased,
the spring-applied holding brakes are held open by their coils and the motors carry the
holding torque (copper loss); with the brakes engaged the drives are disabled, the brakes
hold the arm and only the controller draws power. Those papers measure large car-body
robots; the figures below are assumptions for a compact 7-axis arm, not their numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from robocell.cells import LineParameter


@dataclass(frozen=True)
class PowerModes:
    """Mode powers and switching times, SI units. All values are assumptions.

    Attributes:
        drives_enabled_w: drawn on top of the controller's standby power (the energy meter's
            ``standby_w``, 20 W) while the drives are enabled: 7 joints × 5 W of servo
            amplifier bias and brake release coil (small spring-applied servo brakes need
            5–12 W to stay open). Assumed 35 W.
        gripper_w: electric parallel gripper while it closes or opens at a station (W).
            Assumed 24 W (24 V × 1 A, the order of small electric grippers).
        brake_engage_s: from the brake command until the drives are disabled: the brakes
            close under drive holding torque first (spring-applied brakes engage in
            20–100 ms; the drive stays on until they hold). Assumed 0.2 s.
        brake_release_s: from the release command until the arm may move: drives enabled,
            holding torque built up, brakes opened. Assumed 0.3 s.
        brake_torque_nm: holding torque of each joint's brake (N·m): above any gravity
            torque of the arm (at most about 60 N·m at joint 2 in this cell).
    """

    drives_enabled_w: float = 35.0
    gripper_w: float = 24.0
    brake_engage_s: float = 0.2
    brake_release_s: float = 0.3
    brake_torque_nm: float = 320.0


LINE_PARAMETERS = (
    LineParameter(
        "fixture_offset_mm", "mm", (0.0, 0.0, 0.0), -5.0, 5.0,
        "the machine fixture off its taught position, world frame (x, y, z): a moved fixture",
        size=3,
    ),
)  # fmt: skip

BELIEF_PARAMETERS = (
    LineParameter(
        "believed_fixture_offset_mm", "mm", (0.0, 0.0, 0.0), -10.0, 10.0,
        "calibrated fixture offset from its taught position, world frame: where the arm goes",
        size=3,
    ),
)  # fmt: skip
