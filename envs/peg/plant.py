"""The assembly cell's plant parameters: what wears in production.

The hole wears wider (``clearance_mm``); the arm's joints wear or lose their grease
(``joint_friction_nm``, Coulomb friction in every joint that the impedance controller's
torques must overcome, which costs energy). The controller needs no belief of either: it
finds the hole by touch.
"""

from __future__ import annotations

from robocell.envs.line_params import LineParameter

LINE_PARAMETERS = (
    LineParameter("clearance_mm", "mm", 0.5, 0.05, 2.0, "hole clearance per side (wear)"),
    LineParameter(
        "joint_friction_nm", "N·m", 0.0, 0.0, 5.0,
        "Coulomb friction torque in each arm joint (worn or dry gears)",
    ),
)  # fmt: skip
