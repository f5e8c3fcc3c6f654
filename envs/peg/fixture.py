"""The assembly cell's fixture: a block with a chamfered square hole, made of exact boxes.

Convex-hull shapes carry a 1 mm collision margin that would swallow a 0.5 mm clearance;
PyBullet's boxes have none on their faces (box–box contacts are exact), so the block is a
compound of boxes only, and the chamfer is made of boxes turned by 45°.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robocell.envs.sim import quat_from_euler
from robocell.envs.sim_types import BoxPart

BLOCK_RGBA = (0.45, 0.47, 0.5, 1.0)
CHAMFER_RGBA = (0.6, 0.62, 0.66, 1.0)


@dataclass(frozen=True)
class HoleGeometry:
    """A square blind hole with a 45° chamfer, in a fixture block (all in mm).

    Attributes:
        half_width_mm: half the hole's side (peg half-width + clearance).
        depth_mm: depth from the top face to the bottom (chamfer included).
        chamfer_mm: width and height of the 45° chamfer at the mouth.
        block_half_mm: half the block's side.
        block_height_mm: block height (the block stands on the floor).
    """

    half_width_mm: float
    depth_mm: float
    chamfer_mm: float
    block_half_mm: float
    block_height_mm: float

    def parts(self) -> list[BoxPart]:
        """Exact boxes of the block, body frame at the centre of the hole's mouth (top face).

        Floor under the hole; four walls around it; above the chamfer depth the walls step
        back by the chamfer width, and a box turned 45° about each wall's long axis fills
        the step with its diagonal face: a true 45° slope from (a, −c) to (a + c, 0). The
        rest of each turned box lies inside the walls, and where two slopes meet at a corner
        their union is the mitred corner of a countersink-like pyramid frustum.
        """
        a, d, c = self.half_width_mm, self.depth_mm, self.chamfer_mm
        b, h = self.block_half_mm, self.block_height_mm
        parts = [_box((-b, -b, -h), (b, b, -d))]
        parts += _walls(a, b, -d, -c)
        if c > 0.0:
            parts += _walls(a + c, b, -c, 0.0)
            parts += _chamfer_slopes(a, c)
        return parts


def _box(low_mm: tuple[float, ...], high_mm: tuple[float, ...]) -> BoxPart:
    low, high = np.asarray(low_mm) / 1000.0, np.asarray(high_mm) / 1000.0
    return BoxPart(tuple((high - low) / 2.0), tuple((high + low) / 2.0), BLOCK_RGBA)


def _walls(inner: float, outer: float, z_low: float, z_high: float) -> list[BoxPart]:
    # ±x walls span the full side; ±y walls fit between them.
    return [
        _box((inner, -outer, z_low), (outer, outer, z_high)),
        _box((-outer, -outer, z_low), (-inner, outer, z_high)),
        _box((-inner, inner, z_low), (inner, outer, z_high)),
        _box((-inner, -outer, z_low), (inner, -inner, z_high)),
    ]


def _chamfer_slopes(a: float, c: float) -> list[BoxPart]:
    half_side = c / np.sqrt(2.0) / 1000.0
    length = (a + c) / 1000.0
    centre, z = (a + c) / 1000.0, -c / 1000.0
    about_y = tuple(quat_from_euler(0.0, np.pi / 4, 0.0))
    about_x = tuple(quat_from_euler(np.pi / 4, 0.0, 0.0))
    return [
        BoxPart((half_side, length, half_side), (centre, 0.0, z), CHAMFER_RGBA, about_y),
        BoxPart((half_side, length, half_side), (-centre, 0.0, z), CHAMFER_RGBA, about_y),
        BoxPart((length, half_side, half_side), (0.0, centre, z), CHAMFER_RGBA, about_x),
        BoxPart((length, half_side, half_side), (0.0, -centre, z), CHAMFER_RGBA, about_x),
    ]
