"""The vision cell's hardware and parts: layout, suction cup, part looks, randomisation.

Everything is in metres in the world frame, the robot base at the origin, x away from the
robot, z up. The tray lies in front of the robot, the OK bin on its left (+y), the NG bin on
its right (−y).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robocell.envs.robot import Tool
from robocell.envs.sim_types import BoxPart, Light
from robocell.envs.vision.camera import PartVisual

TABLE_TOP_M = 0.08
TRAY_CENTRE_M = (0.58, 0.0, 0.09)  # centre of the tray's top surface
TRAY_HALF_M = (0.17, 0.17, 0.005)  # larger than the camera's field: the frame is all tray
PART_HALF_M = (0.02, 0.02, 0.01)  # 40 × 40 × 20 mm blocks
PART_TOP_M = TRAY_CENTRE_M[2] + 2 * PART_HALF_M[2]
PART_MASS_KG = 0.05
PLACE_HALF_M = 0.11  # part centres lie within ±110 mm of the tray centre
MIN_SPACING_M = 0.07  # between part centres: > 56.6 mm (a part's diagonal), never touching
FIELD_M = 0.30  # side of the square the camera sees on the tray surface; also the pick area
CAMERA_HEIGHT_M = 0.75
BIN_Y_M = {"ok": 0.30, "ng": -0.30}
BIN_INNER_HALF_M = 0.08
# Wall thickness and height; the floor is 40 mm thick (sunk into the table) so that a
# dropped part cannot pass through it within one 60 Hz physics step.
BIN_WALL_M = (0.005, 0.06)
BIN_FLOOR_M = (0.04, 0.005)  # thickness, height of its top above the table
BIN_SLOTS_M = ((0.0, 0.0), (0.04, 0.04), (-0.04, -0.04), (0.04, -0.04), (-0.04, 0.04))
MAX_PARTS = len(BIN_SLOTS_M)
SUCTION_CUP = Tool("suction", length_m=0.10, size_m=0.012, mass_kg=0.3, rgba=(0.15,) * 3 + (1,))

GOOD_RGB = (0.72, 0.73, 0.76)  # bare aluminium
DISCOLOURED_RGB = (0.70, 0.46, 0.26)  # heat tint / corrosion
MARK_RGB = (0.06, 0.06, 0.06)  # a dark scratch, burr or stain on the top face
TRAY_RGB = (0.20, 0.22, 0.25)
MARK_HALF_M = 0.006  # a 12 mm square mark


@dataclass(frozen=True)
class PartSpec:
    """One part on the tray: its class, how it looks and where it starts."""

    name: str
    defect: str | None  # None, "mark" or "colour"
    rgb: tuple[float, ...]
    mark_xy_m: tuple[float, float]
    position_m: tuple[float, float, float]
    yaw_rad: float

    @property
    def defective(self) -> bool:
        """Whether the part belongs in the NG bin."""
        return self.defect is not None

    def visual(self) -> PartVisual:
        """Boxes in the part frame: the block, plus the mark on its top face if it has one."""
        boxes = [BoxPart(PART_HALF_M, (0.0, 0.0, 0.0), (*self.rgb, 1.0))]
        if self.defect == "mark":
            offset = (*self.mark_xy_m, PART_HALF_M[2] + 0.0001)
            boxes.append(BoxPart((MARK_HALF_M, MARK_HALF_M, 0.0003), offset, (*MARK_RGB, 1.0)))
        return PartVisual(tuple(boxes))


@dataclass(frozen=True)
class Appearance:
    """Domain randomisation of each episode's look.

    Args:
        light_tilt_deg: the light comes from up to this angle off vertical, any azimuth.
        light_level_jitter: relative jitter (uniform ±) of the ambient and diffuse light
            levels; the light's colour channels drop by up to half of it.
        colour_jitter: jitter (uniform ±, RGB in 0–1) of each channel of every part and of
            the tray.
        lamp_level: the lamp's output over nominal (scales the ambient and diffuse levels).
        lamp_tilt_deg: added to the drawn tilt (a lamp knocked off its mount).
    """

    light_tilt_deg: float = 35.0
    light_level_jitter: float = 0.2
    colour_jitter: float = 0.05
    lamp_level: float = 1.0
    lamp_tilt_deg: float = 0.0

    def draw_light(self, rng: np.random.Generator) -> Light:
        """A random light."""
        tilt = np.radians(min(rng.uniform(0.0, self.light_tilt_deg) + self.lamp_tilt_deg, 89.0))
        azimuth = rng.uniform(0.0, 2.0 * np.pi)
        direction = (np.sin(tilt) * np.cos(azimuth), np.sin(tilt) * np.sin(azimuth), np.cos(tilt))
        level = 1.0 + rng.uniform(-self.light_level_jitter, self.light_level_jitter, 2)
        tint = 1.0 - rng.uniform(0.0, self.light_level_jitter / 2.0, 3)
        return Light(
            direction=tuple(float(v) for v in direction),
            color=tuple(float(v) for v in tint),
            ambient=0.6 * float(level[0]) * self.lamp_level,
            diffuse=0.35 * float(level[1]) * self.lamp_level,
        )

    def jitter(self, rgb: tuple[float, ...], rng: np.random.Generator) -> tuple[float, ...]:
        """A colour with each channel jittered."""
        noise = rng.uniform(-self.colour_jitter, self.colour_jitter, 3)
        return tuple(float(v) for v in np.clip(np.asarray(rgb) + noise, 0.0, 1.0))


def base_rgb(defect: str | None) -> tuple[float, float, float]:
    """A part's colour before jitter: discoloured for a colour defect, else bare aluminium."""
    return DISCOLOURED_RGB if defect == "colour" else GOOD_RGB


def draw_parts(
    rng: np.random.Generator, count: int, defect_rate: float, look: Appearance
) -> list[PartSpec]:
    """``count`` parts at random, non-touching poses; each defective with ``defect_rate``.

    Five parts always fit: random sequential placement of 70 mm discs in the 220 mm square
    jams only beyond about a dozen.
    """
    centres: list[np.ndarray] = []
    while len(centres) < count:
        centre = rng.uniform(-PLACE_HALF_M, PLACE_HALF_M, 2)
        if all(np.linalg.norm(centre - other) >= MIN_SPACING_M for other in centres):
            centres.append(centre)
    mark_range = PART_HALF_M[0] - MARK_HALF_M - 0.004
    parts = []
    for index, centre in enumerate(centres):
        defect = None
        if rng.random() < defect_rate:
            defect = ("mark", "colour")[int(rng.integers(2))]
        mark = rng.uniform(-mark_range, mark_range, 2)
        x, y = np.asarray(TRAY_CENTRE_M[:2]) + centre
        parts.append(
            PartSpec(
                name=f"part_{index}",
                defect=defect,
                rgb=look.jitter(base_rgb(defect), rng),
                mark_xy_m=(float(mark[0]), float(mark[1])),
                position_m=(float(x), float(y), TRAY_CENTRE_M[2] + PART_HALF_M[2]),
                yaw_rad=float(rng.uniform(0.0, np.pi / 2.0)),
            )
        )
    return parts


def bin_boxes(name: str) -> list[BoxPart]:
    """A bin's floor and four walls in its frame (origin at the table surface)."""
    inner, (wall, height), (floor, floor_top) = BIN_INNER_HALF_M, BIN_WALL_M, BIN_FLOOR_M
    outer = inner + wall
    rgba = (0.2, 0.55, 0.25, 1.0) if name == "ok" else (0.7, 0.2, 0.15, 1.0)
    return [
        BoxPart((outer, outer, floor / 2), (0.0, 0.0, floor_top - floor / 2), rgba),
        BoxPart((wall / 2, outer, height / 2), (inner + wall / 2, 0.0, height / 2), rgba),
        BoxPart((wall / 2, outer, height / 2), (-inner - wall / 2, 0.0, height / 2), rgba),
        BoxPart((outer, wall / 2, height / 2), (0.0, inner + wall / 2, height / 2), rgba),
        BoxPart((outer, wall / 2, height / 2), (0.0, -inner - wall / 2, height / 2), rgba),
    ]
