"""Seam geometry for the welding cell: plane polylines, arc length, projection, frames.

All lengths here are in millimetres, in the plate's frame (x along the plate, y across),
and a :class:`PlatePose` maps plate coordinates to the world (metres) and back.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

SAMPLE_SPACING_MM = 0.5
SHAPES = ("straight", "arc", "s_curve")


@dataclass(frozen=True)
class PlatePose:
    """A plate's pose: centre (m, world), top-surface height (m) and yaw (rad)."""

    x_m: float
    y_m: float
    top_z_m: float
    yaw_rad: float

    @functools.cached_property
    def yaw_cos_sin(self) -> tuple[float, float]:
        """cos and sin of the yaw (computed once per pose: every step converts with them)."""
        return np.cos(self.yaw_rad), np.sin(self.yaw_rad)

    def to_plate_mm(self, world_m: np.ndarray) -> np.ndarray:
        """World points (…, 3) in metres → plate coordinates (…, 3) in mm (z above the top)."""
        c, s = self.yaw_cos_sin
        dx = world_m[..., 0] - self.x_m
        dy = world_m[..., 1] - self.y_m
        local = _stack_last([c * dx + s * dy, -s * dx + c * dy, world_m[..., 2] - self.top_z_m])
        return local * 1000.0

    def to_world_m(self, plate_mm: np.ndarray) -> np.ndarray:
        """Plate points (…, 2) in mm → world points (…, 3) in metres on the top surface."""
        c, s = self.yaw_cos_sin
        x, y = plate_mm[..., 0] / 1000.0, plate_mm[..., 1] / 1000.0
        z = np.full_like(x, self.top_z_m)
        return _stack_last([self.x_m + c * x - s * y, self.y_m + s * x + c * y, z])

    def direction_to_world(self, plate_dir: np.ndarray) -> np.ndarray:
        """A plate-frame direction (…, 3) as a world direction (…, 3)."""
        c, s = self.yaw_cos_sin
        x, y, z = plate_dir[..., 0], plate_dir[..., 1], plate_dir[..., 2]
        return _stack_last([c * x - s * y, s * x + c * y, z])


def _stack_last(components: list) -> np.ndarray:
    """``np.stack(components, -1)``; for scalars (one point) the cheaper ``np.array``."""
    if np.ndim(components[0]) == 0:
        return np.array(components)
    return np.stack(components, -1)


class Seam:
    """A seam polyline resampled every 0.5 mm, with arc length, tangents and projection.

    Args:
        points_mm: (N, 2) polyline in plate coordinates, at least two points.
        extension_mm: straight run-in and run-out added before the start and after the end,
            so positions before and after the seam project to negative and > length arc
            lengths instead of clamping.
    """

    def __init__(self, points_mm: np.ndarray, extension_mm: float = 40.0) -> None:
        self.points_mm = resample(points_mm, SAMPLE_SPACING_MM)
        self.length_mm = SAMPLE_SPACING_MM * (len(self.points_mm) - 1)
        tangents = np.gradient(self.points_mm, axis=0)
        self.tangents = tangents / np.linalg.norm(tangents, axis=1, keepdims=True)
        self.headings_rad = np.unwrap(np.arctan2(self.tangents[:, 1], self.tangents[:, 0]))
        n_ext = round(extension_mm / SAMPLE_SPACING_MM)
        steps = SAMPLE_SPACING_MM * np.arange(1, n_ext + 1)[:, None]
        before = self.points_mm[0] - steps[::-1] * self.tangents[0]
        after = self.points_mm[-1] + steps * self.tangents[-1]
        self._ext_points = np.vstack([before, self.points_mm, after])
        self._ext_s = SAMPLE_SPACING_MM * (np.arange(len(self._ext_points)) - n_ext)
        self._ext_x, self._ext_y = self._ext_points[:, 0].copy(), self._ext_points[:, 1].copy()
        self._ext_tangents = np.vstack(
            [
                np.repeat(self.tangents[:1], n_ext, 0),
                self.tangents,
                np.repeat(self.tangents[-1:], n_ext, 0),
            ]
        )

    def project(self, plate_xy_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Arc length (mm) and signed lateral offset (mm, left of travel > 0) of points (M, 2)."""
        # Brute force over ~1000 samples beats a k-d tree's call overhead at these sizes.
        x, y = plate_xy_mm[:, 0:1], plate_xy_mm[:, 1:2]
        dx, dy = self._ext_x - x, self._ext_y - y
        dx *= dx
        dy *= dy
        dx += dy
        nearest = dx.argmin(axis=1)
        dx = plate_xy_mm[:, 0] - self._ext_x[nearest]
        dy = plate_xy_mm[:, 1] - self._ext_y[nearest]
        tx, ty = self._ext_tangents[nearest, 0], self._ext_tangents[nearest, 1]
        return self._ext_s[nearest] + dx * tx + dy * ty, tx * dy - ty * dx

    def frame_at(self, s_mm: float) -> tuple[np.ndarray, np.ndarray]:
        """Unit tangent and left normal (plate frame, 2-D) at arc length ``s_mm`` (clamped)."""
        index = _sample_index(s_mm, len(self.tangents))
        tangent = self.tangents[index]
        return tangent, np.array([-tangent[1], tangent[0]])

    def heading_change_rad(self, s_mm: float, ahead_mm: np.ndarray) -> np.ndarray:
        """How much the seam turns (rad, left > 0) between ``s_mm`` and ``s_mm + ahead_mm``."""
        last = len(self.headings_rad) - 1
        here = _sample_index(s_mm, last + 1)
        there = np.round((s_mm + ahead_mm) / SAMPLE_SPACING_MM).astype(int)
        there = np.minimum(np.maximum(there, 0), last)
        return self.headings_rad[there] - self.headings_rad[here]

    def point_at(self, s_mm: float) -> np.ndarray:
        """Plate-frame point (mm) at arc length ``s_mm`` (clamped to the seam)."""
        index = _sample_index(s_mm, len(self.points_mm))
        return self.points_mm[index]


def _sample_index(s_mm: float, count: int) -> int:
    """Index of the sample nearest arc length ``s_mm``, clamped to ``count`` samples.

    Python's min/max: ``np.clip`` costs microseconds on a scalar, and this runs every step.
    """
    return int(min(max(round(s_mm / SAMPLE_SPACING_MM), 0), count - 1))


def resample(points_mm: np.ndarray, spacing_mm: float) -> np.ndarray:
    """Points every ``spacing_mm`` of arc length along a polyline (ends included)."""
    segments = np.linalg.norm(np.diff(points_mm, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(segments)])
    targets = np.arange(0.0, s[-1] + 1e-9, spacing_mm)
    return np.stack([np.interp(targets, s, points_mm[:, k]) for k in range(2)], -1)


def make_seam_points(shape: str, length_mm: float, rng: np.random.Generator) -> np.ndarray:
    """A centred seam polyline of the given shape and (approximate) arc length in mm."""
    t = np.linspace(0.0, 1.0, 400)
    if shape == "straight":
        xy = np.stack([(t - 0.5) * length_mm, np.zeros_like(t)], -1)
    elif shape == "arc":
        sweep = rng.uniform(np.deg2rad(30.0), np.deg2rad(90.0)) * rng.choice([-1.0, 1.0])
        radius = length_mm / abs(sweep)
        angle = (t - 0.5) * sweep
        xy = np.stack([radius * np.sin(angle), np.sign(sweep) * radius * (1 - np.cos(angle))], -1)
        xy[:, 1] -= xy[:, 1].mean()
    elif shape == "s_curve":
        amplitude = rng.uniform(5.0, 12.0) * rng.choice([-1.0, 1.0])
        span = length_mm
        for _ in range(20):  # shrink the span until the curve's arc length is the target
            xy = np.stack([(t - 0.5) * span, amplitude * np.sin(2 * np.pi * t)], -1)
            arc = np.linalg.norm(np.diff(xy, axis=0), axis=1).sum()
            span *= length_mm / arc
    else:
        raise ValueError(f"unknown seam shape {shape!r}; choose from {SHAPES}")
    return xy
