"""The arc-welding process model: which stretch of seam was welded, and how well.

The seam is cut into 0.5 mm cells. While the arc burns, the torch's path over one control
step is sampled every 0.25 mm; each seam cell the torch passes for the first time is welded
*good* when, at that moment, the lateral error is within ±``lateral_tol_mm``, the standoff
within ``standoff_mm`` ± ``standoff_tol_mm`` and the travel speed within the welding
procedure's band; otherwise it is a *defect*. An arc that stands still burns through the cell
under it (defect). Heat input is η · P_arc · t_arc / welded length (EN 1011-1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robocell.envs.energy import EnergyConstants
from robocell.envs.weld.seam import SAMPLE_SPACING_MM, Seam

UNWELDED, GOOD, DEFECT = 0, 1, 2
PATH_SAMPLE_MM = 0.25
STANDING_SPEED_MM_S = 0.5


@dataclass(frozen=True)
class WeldProcessSpec:
    """Welding procedure specification (GMAW fillet on 3 mm steel), lengths in mm.

    Attributes:
        lateral_tol_mm: allowed torch offset across the seam.
        standoff_mm, standoff_tol_mm: contact-tip-to-work distance and its tolerance.
        speed_band_mm_s: allowed travel speeds (min, max).
        arc_max_mm: the arc cannot be struck or held above this standoff.
        capture_mm: the arc only affects the seam within this lateral distance.
        arc_power_w, arc_efficiency: see :class:`robocell.envs.energy.EnergyConstants`.
    """

    lateral_tol_mm: float = 1.0
    standoff_mm: float = 12.0
    standoff_tol_mm: float = 2.0
    speed_band_mm_s: tuple[float, float] = (6.0, 12.0)
    arc_max_mm: float = 25.0
    capture_mm: float = 5.0
    arc_power_w: float = EnergyConstants.arc_power_w
    arc_efficiency: float = EnergyConstants.arc_efficiency


@dataclass(frozen=True)
class WeldStep:
    """What one control step did to the seam."""

    good_mm: float
    defect_mm: float
    lateral_error_mm: float
    standoff_mm: float
    speed_mm_s: float


class WeldProcess:
    """Seam state of one episode: per-cell weld status and running figures."""

    def __init__(self, seam: Seam, spec: WeldProcessSpec) -> None:
        self.seam = seam
        self.spec = spec
        self.cells = np.zeros(len(seam.points_mm), dtype=np.int8)
        self.arc_time_s = 0.0
        self.good_cells = 0
        self.defect_cells = 0
        self._lateral_sum_mm = 0.0
        self._lateral_count = 0

    @property
    def good_fraction(self) -> float:
        """Fraction of the seam welded good."""
        return self.good_cells / len(self.cells)

    @property
    def defect_mm(self) -> float:
        """Length of defective weld (mm)."""
        return self.defect_cells * SAMPLE_SPACING_MM

    def advance(
        self, start_mm: np.ndarray, end_mm: np.ndarray, arc_on: bool, dt_s: float
    ) -> WeldStep:
        """Weld along the torch path ``start_mm → end_mm`` (real plate frame, z = standoff)."""
        n = max(2, int(np.ceil(np.linalg.norm(end_mm - start_mm) / PATH_SAMPLE_MM)) + 1)
        path = np.linspace(start_mm, end_mm, n)
        s, lateral = self.seam.project(path[:, :2])
        speed = abs(s[-1] - s[0]) / dt_s
        step = WeldStep(0.0, 0.0, float(lateral[-1]), float(end_mm[2]), float(speed))
        if not arc_on:
            return step
        self.arc_time_s += dt_s
        on_seam = (np.abs(lateral) <= self.spec.capture_mm) & (s >= 0.0)
        on_seam &= s <= self.seam.length_mm
        if not on_seam.any():
            return step
        # Only the cells under this step's path can change: compare that span alone.
        span = self._cell_span(s[on_seam])
        before = self.cells[span].copy()
        self._weld_samples(s[on_seam], lateral[on_seam], path[on_seam, 2], speed)
        after = self.cells[span]
        new_good = int(np.count_nonzero((before == UNWELDED) & (after == GOOD)))
        new_defect = int(np.count_nonzero((before != DEFECT) & (after == DEFECT)))
        lost_good = int(np.count_nonzero((before == GOOD) & (after == DEFECT)))
        self.good_cells += new_good - lost_good
        self.defect_cells += new_defect
        return WeldStep(
            new_good * SAMPLE_SPACING_MM,
            new_defect * SAMPLE_SPACING_MM,
            step.lateral_error_mm,
            step.standoff_mm,
            step.speed_mm_s,
        )

    def _weld_samples(
        self, s: np.ndarray, lateral: np.ndarray, standoff: np.ndarray, speed: float
    ) -> None:
        spec = self.spec
        self._lateral_sum_mm += float(np.abs(lateral).sum())
        self._lateral_count += len(lateral)
        cells = self._cell_indices(s)
        if speed < STANDING_SPEED_MM_S:
            self.cells[cells[-1]] = DEFECT  # a standing arc burns through
            return
        ok = (np.abs(lateral) <= spec.lateral_tol_mm) & (
            np.abs(standoff - spec.standoff_mm) <= spec.standoff_tol_mm
        )
        ok &= spec.speed_band_mm_s[0] <= speed <= spec.speed_band_mm_s[1]
        lo, hi = int(cells.min()), int(cells.max())
        quality = np.interp(np.arange(lo, hi + 1), np.sort(cells), ok[np.argsort(cells)]) > 0.5
        span = self.cells[lo : hi + 1]
        fresh = span == UNWELDED
        span[fresh] = np.where(quality[fresh], GOOD, DEFECT)

    def _cell_indices(self, s: np.ndarray) -> np.ndarray:
        cells = np.round(s / SAMPLE_SPACING_MM).astype(int)
        return np.minimum(np.maximum(cells, 0), len(self.cells) - 1)

    def _cell_span(self, s: np.ndarray) -> slice:
        """The cells that samples at arc lengths ``s`` (mm) can weld."""
        cells = self._cell_indices(s)
        return slice(int(cells.min()), int(cells.max()) + 1)

    def figures(self) -> dict[str, float]:
        """Seam coverage, good fraction, defect length, lateral error, heat input, arc time."""
        welded = self.good_cells + self.defect_cells
        welded_mm = welded * SAMPLE_SPACING_MM
        heat = self.spec.arc_efficiency * self.spec.arc_power_w * self.arc_time_s
        mean_lateral = self._lateral_sum_mm / self._lateral_count if self._lateral_count else 0.0
        return {
            "seam_coverage": welded / len(self.cells),
            "good_fraction": self.good_fraction,
            "defect_length_mm": self.defect_mm,
            "mean_lateral_error_mm": mean_lateral,
            "heat_input_j_per_mm": float(heat / welded_mm) if welded_mm else 0.0,
            "arc_time_s": self.arc_time_s,
        }
