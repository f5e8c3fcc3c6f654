"""Plain values the simulation wrapper takes and returns: box parts, lights, contacts.

No PyBullet here; :mod:`robocell.envs.sim` turns them into PyBullet calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Contact:
    """One contact point between two bodies (world frame, SI units)."""

    position_on_b: np.ndarray
    normal_on_b: np.ndarray
    distance_m: float
    normal_force_n: float
    link_a: int
    link_b: int


@dataclass(frozen=True)
class Light:
    """TinyRenderer lighting: a directional light plus ambient, diffuse, specular weights.

    Args:
        direction: vector pointing from the scene towards the light (world frame).
        color: light colour (RGB, 0–1).
        ambient: ambient coefficient.
        diffuse: diffuse (Lambert) coefficient.
        specular: specular coefficient.
    """

    direction: tuple[float, float, float] = (0.3, 0.2, 1.0)
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.6
    diffuse: float = 0.35
    specular: float = 0.05

    def render_kwargs(self) -> dict[str, Any]:
        """The matching ``getCameraImage`` keyword arguments."""
        return {
            "lightDirection": list(self.direction),
            "lightColor": list(self.color),
            "lightAmbientCoeff": self.ambient,
            "lightDiffuseCoeff": self.diffuse,
            "lightSpecularCoeff": self.specular,
        }


@dataclass(frozen=True)
class BoxPart:
    """One box of a compound body: half extents and offset in the body frame (m), colour.

    ``orientation`` (quaternion x, y, z, w, in the body frame) tilts the box, e.g. to make
    the sloped face of a chamfer.
    """

    half_extents: tuple[float, float, float]
    offset: tuple[float, float, float]
    rgba: Sequence[float] = (0.6, 0.6, 0.6, 1.0)
    orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
