"""A pick over image positions: an image-aligned grid of tray cells, times the bins.

A fully-convolutional policy scores every position of the camera image and picks the best
one (Zeng et al. 2018, "Learning Synergies between Pushing and Grasping"; Zeng et al. 2020,
"Transporter Networks"). :class:`PickGrid` is the action that such a policy outputs: the
image is cut into ``rows × cols`` equal cells (cell (row, col) covers the same part of the
image for any image size), and one discrete index names a cell and a bin::

    index = bin · rows · cols + row · cols + col

Rows run from the image's top edge down, columns from its left edge to the right, exactly
as the image's own rows and columns. The pick point of a cell is where the camera ray
through the cell's centre meets the plane of the parts' top faces; the camera looks
straight down, so that point is linear in (row, col) and the whole mapping is given by the
ranges of x and y across the image (``x_range_m``, ``y_range_m``, top/left edge first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from robocell.envs.vision.camera import OverheadCamera

# The formula above, as the bundle manifest states it.
INDEX_LAYOUT = "bin*rows*cols + row*cols + col"


@dataclass(frozen=True)
class PickGrid:
    """Cells of an image-aligned grid on a horizontal plane, times named bins.

    Args:
        rows: cells from the image's top edge to its bottom edge.
        cols: cells from the image's left edge to its right edge.
        x_range_m: world x (m) at the image's top edge and at its bottom edge.
        y_range_m: world y (m) at the image's left edge and at its right edge.
        plane_z_m: height (m) of the plane the pick points lie on.
        bins: bin names, in index order.
    """

    rows: int
    cols: int
    x_range_m: tuple[float, float]
    y_range_m: tuple[float, float]
    plane_z_m: float
    bins: tuple[str, ...]

    @classmethod
    def from_camera(
        cls, camera: OverheadCamera, size: int, plane_z_m: float, bins: Sequence[str]
    ) -> PickGrid:
        """A ``size × size`` grid over the camera's image, on the plane z = ``plane_z_m``."""
        if size < 2:
            raise ValueError(f"a pick grid needs at least 2 cells per side, got {size}")
        edges = np.array([[0.0, 0.0], [camera.size_px, camera.size_px]])
        (x0, y0, _), (x1, y1, _) = camera.pixel_to_world(edges, plane_z_m)
        x_range, y_range = (float(x0), float(x1)), (float(y0), float(y1))
        return cls(size, size, x_range, y_range, float(plane_z_m), tuple(bins))

    @property
    def cells(self) -> int:
        """Cells per bin (rows × cols)."""
        return self.rows * self.cols

    @property
    def n_actions(self) -> int:
        """Size of the Discrete action space: cells × bins."""
        return self.cells * len(self.bins)

    @property
    def cell_m(self) -> tuple[float, float]:
        """Size (m) of one cell along x and along y."""
        x0, x1 = self.x_range_m
        y0, y1 = self.y_range_m
        return abs(x1 - x0) / self.rows, abs(y1 - y0) / self.cols

    def decode(self, index: int) -> tuple[np.ndarray, str]:
        """The pick point (x, y) in metres and the bin of an action index."""
        index = int(index)
        if not 0 <= index < self.n_actions:
            raise ValueError(f"pick index {index} outside [0, {self.n_actions})")
        bin_index, cell = divmod(index, self.cells)
        row, col = divmod(cell, self.cols)
        return self.point(row, col), self.bins[bin_index]

    def point(self, row: float, col: float) -> np.ndarray:
        """The pick point (x, y) of the centre of cell (row, col)."""
        x0, x1 = self.x_range_m
        y0, y1 = self.y_range_m
        x = x0 + (row + 0.5) / self.rows * (x1 - x0)
        y = y0 + (col + 0.5) / self.cols * (y1 - y0)
        return np.array([x, y])

    def cell_of(self, xy: Sequence[float]) -> tuple[int, int]:
        """(row, col) of the cell holding the point (x, y); points outside map to the edge."""
        x0, x1 = self.x_range_m
        y0, y1 = self.y_range_m
        row = int(np.floor((xy[0] - x0) / (x1 - x0) * self.rows))
        col = int(np.floor((xy[1] - y0) / (y1 - y0) * self.cols))
        return int(np.clip(row, 0, self.rows - 1)), int(np.clip(col, 0, self.cols - 1))

    def encode(self, xy: Sequence[float], bin_name: str) -> int:
        """The action index that picks at the cell holding (x, y) and places into ``bin_name``."""
        return self.index(*self.cell_of(xy), bin_name)

    def cells_near(self, xy: Sequence[float], radius_m: float) -> list[tuple[int, int, float]]:
        """(row, col, distance in m) of every cell whose centre lies within ``radius_m``."""
        dx, dy = self.cell_m
        row0, col0 = self.cell_of(xy)
        reach_rows, reach_cols = int(np.ceil(radius_m / dx)) + 1, int(np.ceil(radius_m / dy)) + 1
        found = []
        for row in range(max(0, row0 - reach_rows), min(self.rows, row0 + reach_rows + 1)):
            for col in range(max(0, col0 - reach_cols), min(self.cols, col0 + reach_cols + 1)):
                distance = float(np.linalg.norm(self.point(row, col) - np.asarray(xy)))
                if distance <= radius_m:
                    found.append((row, col, distance))
        return found

    def index(self, row: int, col: int, bin_name: str) -> int:
        """The action index of cell (row, col) and ``bin_name``."""
        return self.bins.index(bin_name) * self.cells + row * self.cols + col

    def describe(self) -> dict[str, Any]:
        """The grid as the bundle manifest's ``action.grid`` entry states it."""
        return {
            "rows": self.rows,
            "cols": self.cols,
            "bins": list(self.bins),
            "x_range_m": list(self.x_range_m),
            "y_range_m": list(self.y_range_m),
            "plane_z_m": self.plane_z_m,
            "index": INDEX_LAYOUT,
        }
