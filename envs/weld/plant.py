"""The welding cell's plant parameters (what drifts in production) and the belief of them.

A torch bent in a collision moves the wire tip off the TCP the robot was taught; the wire's
stick-out changes as the contact tip wears. The belief is the tip offset the controller side
works with (the TCP calibration): the action moves, and the seam tracker reads from, that TCP.
"""

from __future__ import annotations

import numpy as np

from robocell.envs.line_params import LineParameter

NOMINAL_STICKOUT_MM = 15.0  # the taught TCP sits at this stick-out (GMAW: 12–20 mm)

LINE_PARAMETERS = (
    LineParameter(
        "tcp_offset_mm", "mm", (0.0, 0.0, 0.0), -20.0, 20.0,
        "wire tip off the taught TCP, TCP frame (x, y across the torch, z along it): a bent torch",
        size=3,
    ),
    LineParameter(
        "wire_stickout_mm", "mm", NOMINAL_STICKOUT_MM, 5.0, 25.0,
        "wire stick-out beyond the contact tip; the tip moves along the torch by its change",
    ),
)  # fmt: skip

BELIEF_PARAMETERS = (
    LineParameter(
        "believed_tcp_offset_mm", "mm", (0.0, 0.0, 0.0), -30.0, 30.0,
        "calibrated wire tip off the taught TCP, TCP frame (bend and stick-out change together)",
        size=3,
    ),
)  # fmt: skip


def true_tip_offset_mm(tcp_offset_mm: tuple[float, ...], wire_stickout_mm: float) -> np.ndarray:
    """The wire tip off the taught TCP (TCP frame, mm): the bend plus the stick-out's change."""
    offset = np.asarray(tcp_offset_mm, dtype=float).copy()
    offset[2] += wire_stickout_mm - NOMINAL_STICKOUT_MM
    return offset
