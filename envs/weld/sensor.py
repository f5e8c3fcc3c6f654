"""The welding cell's laser seam tracker."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeamSensorSpec:
    """Laser seam tracker (line scanner) on the torch.

    The scanner looks ``look_ahead_mm`` ahead of the torch, buffers its profiles and reports
    the seam position at the torch when the torch arrives there, as commercial trackers do.
    Readings: lateral offset of the seam from the torch (mm) and standoff of the torch above
    the plate (mm), each with Gaussian noise of ``noise_mm`` standard deviation. The lateral
    reading is valid only while the seam lies within the scan line's ``fov_mm`` half-width
    and under the scanned stretch of the seam.
    """

    look_ahead_mm: float = 10.0
    fov_mm: float = 10.0
    noise_mm: float = 0.1
    max_range_mm: float = 60.0
