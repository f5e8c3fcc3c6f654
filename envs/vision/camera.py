"""The vision cell's overhead camera: its geometry and its render-only client.

:class:`OverheadCamera` is the camera model a vision engineer calibrates: a pinhole camera
straight above the tray, with the matrices PyBullet renders with and the mapping between
pixels and points on a horizontal plane (``world_to_pixel``, ``pixel_to_world``).

:class:`RenderClient` draws what the camera sees from a second, render-only :class:`Sim`
that holds visual shapes alone (no robot, no collision shapes). The TinyRenderer pays for
every pixel every triangle covers, and the tray fills the whole frame, so the static tray
is drawn once per episode into a background image; each frame then draws only the parts
and lays them over the background by depth. Without shadows this equals drawing the full
scene, at a fraction of the cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from robocell.envs.sim import Sim, projection_matrix, view_matrix
from robocell.envs.sim_types import BoxPart, Light

# Depth-buffer values at or above this are background (PyBullet clears the buffer to 1.0).
_BACKGROUND_DEPTH = 0.99999


@dataclass(frozen=True)
class OverheadCamera:
    """A pinhole camera looking straight down at a horizontal tray.

    Image rows run from +x (top) to −x (bottom) and columns from +y (left) to −y (right),
    i.e. the robot at the base of the tray stands below the image.

    Args:
        centre_m: world point (x, y, z) on the tray surface at the image centre.
        height_m: camera height above that point.
        field_m: side of the square seen on the tray surface.
        size_px: image width and height in pixels.
        near_m: near clipping distance.
        far_m: far clipping distance.
        shift_m: the camera's position off its mount (world x, y, z; m).
        rotation_deg: its rotation off its mount, extrinsic x, y, z Euler angles (deg), about
            the camera's own position; a mounted camera (zeros) looks straight down.
    """

    centre_m: tuple[float, float, float]
    height_m: float
    field_m: float
    size_px: int = 84
    near_m: float = 0.1
    far_m: float = 2.0
    shift_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def eye_m(self) -> np.ndarray:
        """Camera position in the world (m)."""
        return np.asarray(self.centre_m) + np.array([0.0, 0.0, self.height_m]) + self.shift_m

    @property
    def rotation(self) -> np.ndarray:
        """3 × 3 rotation of the camera off its mount (world frame)."""
        return Rotation.from_euler("xyz", self.rotation_deg, degrees=True).as_matrix()

    @property
    def fov_deg(self) -> float:
        """Vertical (= horizontal) field of view in degrees."""
        return float(np.degrees(2.0 * np.arctan(0.5 * self.field_m / self.height_m)))

    @property
    def metres_per_px(self) -> float:
        """Size of one pixel on the tray surface (m)."""
        return self.field_m / self.size_px

    def view_matrix(self) -> list[float]:
        """PyBullet view matrix (column-major)."""
        eye, up = self.eye_m, np.array([1.0, 0.0, 0.0])
        if not any(self.rotation_deg):
            return view_matrix(eye, np.asarray(self.centre_m) + self.shift_m, up)
        forward = self.rotation @ np.array([0.0, 0.0, -self.height_m])
        return view_matrix(eye, eye + forward, self.rotation @ up)

    def projection_matrix(self) -> list[float]:
        """PyBullet projection matrix (column-major)."""
        return projection_matrix(self.fov_deg, 1.0, self.near_m, self.far_m)

    def _clip_from_world(self) -> np.ndarray:
        view = np.asarray(self.view_matrix()).reshape(4, 4).T
        proj = np.asarray(self.projection_matrix()).reshape(4, 4).T
        return proj @ view

    def world_to_pixel(self, points_m: np.ndarray) -> np.ndarray:
        """Image coordinates (u = column, v = row) of world points (…, 3).

        Pixel (column i, row j) spans [i, i + 1) × [j, j + 1), so its centre is at
        (i + .5, j + .5). The half-pixel offsets match where the TinyRenderer samples: it
        samples at integer window coordinates and flips the rows.
        """
        points = np.asarray(points_m, dtype=float)
        homogeneous = np.concatenate([points, np.ones((*points.shape[:-1], 1))], axis=-1)
        clip = homogeneous @ self._clip_from_world().T
        ndc = clip[..., :2] / clip[..., 3:4]
        u = (ndc[..., 0] + 1.0) * 0.5 * self.size_px + 0.5
        v = (1.0 - ndc[..., 1]) * 0.5 * self.size_px - 0.5
        return np.stack([u, v], axis=-1)

    def pixel_to_world(self, pixels: np.ndarray, plane_z_m: float) -> np.ndarray:
        """World points (…, 3) on the plane z = ``plane_z_m`` seen at image coordinates (…, 2)."""
        pixels = np.asarray(pixels, dtype=float)
        ndc_x = 2.0 * (pixels[..., 0] - 0.5) / self.size_px - 1.0
        ndc_y = 1.0 - 2.0 * (pixels[..., 1] + 0.5) / self.size_px
        inverse = np.linalg.inv(self._clip_from_world())
        ends = []
        for ndc_z in (-1.0, 1.0):
            ndc = np.stack([ndc_x, ndc_y, np.full_like(ndc_x, ndc_z), np.ones_like(ndc_x)], -1)
            world = ndc @ inverse.T
            ends.append(world[..., :3] / world[..., 3:4])
        near, far = ends
        t = (plane_z_m - near[..., 2]) / (far[..., 2] - near[..., 2])
        return near + t[..., None] * (far - near)

    def depth_to_height_m(self, depth: np.ndarray) -> np.ndarray:
        """Height above the tray surface (m) from PyBullet's non-linear depth buffer."""
        near, far = self.near_m, self.far_m
        distance = far * near / (far - (far - near) * depth)
        return self.height_m - distance


@dataclass(frozen=True)
class PartVisual:
    """What one part looks like: boxes in its body frame (the body plus any defect mark)."""

    boxes: tuple[BoxPart, ...]


class RenderClient:
    """The camera's own render-only simulation: tray background once, parts per frame.

    Args:
        camera: the camera model.
        depth: also return a depth channel (height above the tray, 1 mm per unit, uint8).
    """

    def __init__(self, camera: OverheadCamera, depth: bool = False) -> None:
        self.depth = depth
        self.sim = Sim(simple_broadphase=False)  # never stepped
        self.set_camera(camera)
        self._light = Light()
        self._background_rgb = np.zeros((camera.size_px, camera.size_px, 3), np.uint8)
        self._background_height_m = np.zeros((camera.size_px, camera.size_px), np.float32)
        self._shown: list[str] = []

    def set_camera(self, camera: OverheadCamera) -> None:
        """Render through ``camera`` from the next :meth:`build` on (the plant's true camera)."""
        self.camera = camera
        self._view = camera.view_matrix()
        self._projection = camera.projection_matrix()

    @property
    def light(self) -> Light:
        """The episode's lighting."""
        return self._light

    @property
    def channels(self) -> int:
        """Image channels: RGB, plus depth when asked for."""
        return 4 if self.depth else 3

    def build(
        self,
        tray_half_m: tuple[float, float, float],
        tray_rgba: Sequence[float],
        parts: dict[str, PartVisual],
        light: Light,
    ) -> None:
        """A fresh scene: draw the tray background, then create the parts' visuals."""
        self.sim.reset()
        self._light = light
        top = np.asarray(self.camera.centre_m)
        centre = (top[0], top[1], top[2] - tray_half_m[2])
        self.sim.create_box("tray", tray_half_m, centre, rgba=tray_rgba, collision=False)
        rgb, depth = self._draw()
        self._background_rgb = rgb
        self._background_height_m = self.camera.depth_to_height_m(depth)
        self.sim.remove_body("tray")
        for name, visual in parts.items():
            self.sim.create_compound(name, visual.boxes, (0.0, 0.0, -1.0), collision=False)
        self._shown = list(parts)

    def sync(self, poses: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Copy part poses from the physics client; parts not listed leave the picture."""
        for name in [n for n in self._shown if n not in poses]:
            self.sim.remove_body(name)
        self._shown = [n for n in self._shown if n in poses]
        for name in self._shown:
            self.sim.set_base_pose(name, *poses[name])

    @property
    def shown_parts(self) -> list[str]:
        """Parts currently in the picture."""
        return list(self._shown)

    def render(self) -> np.ndarray:
        """The camera image, channel-first uint8 (RGB, plus depth when enabled)."""
        rgb, depth = self._draw()
        parts = depth < _BACKGROUND_DEPTH
        rgb = np.where(parts[..., None], rgb, self._background_rgb)
        image = rgb.transpose(2, 0, 1)
        if not self.depth:
            return np.ascontiguousarray(image)
        height = np.where(parts, self.camera.depth_to_height_m(depth), self._background_height_m)
        depth_mm = np.clip(np.rint(height * 1000.0), 0, 255).astype(np.uint8)
        return np.concatenate([image, depth_mm[None]], axis=0)

    def _draw(self) -> tuple[np.ndarray, np.ndarray]:
        size = self.camera.size_px
        return self.sim.camera_image(size, size, self._view, self._projection, self._light)

    def close(self) -> None:
        """Release the render client; safe to call twice."""
        self.sim.close()


@dataclass(frozen=True)
class Blob:
    """One connected region that stands out from the tray in a camera image.

    Attributes:
        centre_px: centroid (u = column, v = row) in image coordinates (pixel centres at .5).
        area_px: pixels in the region (holes filled).
        redness: mean r / (r + g + b) over the region, independent of brightness.
        dark_px: pixels darker than ``dark_ratio`` × the region's median brightness.
    """

    centre_px: np.ndarray
    area_px: int
    redness: float
    dark_px: int


def detect_parts(
    image: np.ndarray, min_area_px: float, contrast: float = 0.2, dark_ratio: float = 0.35
) -> list[Blob]:
    """Classical blob detection on a channel-first RGB image (uint8), ordered by row.

    The tray is taken as the image's median colour (it covers most of the frame); pixels
    more than ``contrast`` (RGB distance, 0–1 scale) from it are foreground, holes (dark
    marks) are filled, and connected regions of at least ``min_area_px`` pixels are parts.
    """
    rgb = np.asarray(image[:3], dtype=np.float32).transpose(1, 2, 0) / 255.0
    tray = np.median(rgb.reshape(-1, 3), axis=0)
    foreground = np.linalg.norm(rgb - tray, axis=2) > contrast
    labels, count = ndimage.label(ndimage.binary_fill_holes(foreground))
    brightness = rgb.sum(axis=2)
    redness = rgb[..., 0] / np.maximum(brightness, 1e-6)
    blobs = []
    for index in range(1, count + 1):
        region = labels == index
        area = int(region.sum())
        if area < min_area_px:
            continue
        rows, cols = np.nonzero(region)
        level = float(np.median(brightness[region]))
        blobs.append(
            Blob(
                centre_px=np.array([cols.mean() + 0.5, rows.mean() + 0.5]),
                area_px=area,
                redness=float(redness[region].mean()),
                dark_px=int((brightness[region] < dark_ratio * level).sum()),
            )
        )
    return blobs
