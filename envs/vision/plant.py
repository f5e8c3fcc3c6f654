"""The vision cell's plant parameters (what drifts in production) and the belief of them.

The camera's pose off its mount and the lamp drift; a new part batch brings its own colour
spread. The belief is the camera pose the controller side works with: the pick grid maps
image cells to the tray through it, and the scripted sorter maps blobs through it.
"""

from __future__ import annotations

from robocell.envs.line_params import LineParameter

LINE_PARAMETERS = (
    LineParameter(
        "camera_tilt_deg", "deg", 0.0, -10.0, 10.0,
        "camera rotation off its mount about the world y axis (a knock tilts the view along x)",
    ),
    LineParameter(
        "camera_shift_mm", "mm", (0.0, 0.0), -50.0, 50.0,
        "camera shift off its mount along world x and y", size=2,
    ),
    LineParameter("lamp_level", "1", 1.0, 0.3, 1.5, "lamp output over nominal (ambient, diffuse)"),
    LineParameter("lamp_tilt_deg", "deg", 0.0, 0.0, 45.0, "lamp tilt added to the drawn tilt"),
    LineParameter(
        "colour_jitter", "1", 0.05, 0.0, 0.25,
        "the part batch's colour spread: uniform ± per RGB channel (0–1) of parts and tray",
    ),
)  # fmt: skip

BELIEF_PARAMETERS = (
    LineParameter(
        "believed_camera_shift_mm", "mm", (0.0, 0.0, 0.0), -100.0, 100.0,
        "calibrated camera position off its mount (world x, y, z)", size=3,
    ),
    LineParameter(
        "believed_camera_rotation_deg", "deg", (0.0, 0.0, 0.0), -20.0, 20.0,
        "calibrated camera rotation off its mount (extrinsic x, y, z Euler angles)", size=3,
    ),
)  # fmt: skip
