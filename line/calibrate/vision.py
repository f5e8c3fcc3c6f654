"""Camera calibration of ``robocell/VisionSort-v1`` from a chessboard target.

The robot lays a chessboard (9 × 6 inner corners, 12 mm squares, on a white plate) flat
at the tray centre, then on an 80 mm riser, and moves out of view; each time the plant's
true camera takes one full-resolution frame (640 × 640, rendered 4× supersampled and
binned; the policy still sees its own image size); OpenCV finds the corners
(``findChessboardCorners`` + ``cornerSubPix``) and ``solvePnP`` solves the camera pose with
the intrinsics of the camera model (field of view, size) over both sets of corners. The
pose becomes the belief ``believed_camera_shift_mm`` / ``believed_camera_rotation_deg``
in the conventions of :class:`~robocell.envs.vision.camera.OverheadCamera`. The target is
drawn in the camera's render client, with the episode's light, and removed again; the
parts of the current episode leave the picture (reset the env before the next part).
Reduction: the robot's carry of the target is costed (time from rated joint speeds,
energy estimated) but not simulated.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from robocell.envs.vision.camera import OverheadCamera
from robocell.envs.vision.scene import TRAY_CENTRE_M, TRAY_HALF_M, TRAY_RGB
from robocell.envs.vision.task import TRAVEL_HEIGHT_M
from robocell.errors import RobocellError
from robocell.line.calibrate import CalibrationResult, move_time_s, standby_energy_j

INNER_CORNERS = (9, 6)  # per row (along world y), rows (along world x)
SQUARE_M = 0.012  # small enough to stay in view under a 5° knock plus 20 mm shift
BORDER_M = 0.010
TARGET_TOP_M = TRAY_CENTRE_M[2] + 0.001  # a 1 mm plate on the tray
CAPTURE_PX = 640
# The TinyRenderer does not antialias: a hard edge puts corners on half pixels (0.4 px off),
# which a narrow-field camera turns into tilt-shift errors; supersampling gives real edges.
SUPERSAMPLE = 4
# The target is shot on the tray and on an 80 mm riser: a flat target seen by a narrow
# (22°) field cannot tell a tilt from a shift to better than about 0.5° and 6 mm.
TARGET_HEIGHTS_M = (TARGET_TOP_M, TARGET_TOP_M + 0.08)
EXPOSURE_S = 0.5  # one frame plus settling of the arm out of view
TARGET_HOLDER_M = (0.35, -0.45, TRAVEL_HEIGHT_M)  # where the target waits beside the tray
SUCTION_PUMP_W = 25.0
# Mount axes of OpenCV's camera frame (x right, y down, z forward) for a mounted camera:
# image right is world −y, image down is world −x, the view is down (OverheadCamera).
CV_AXES_ON_MOUNT = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]).T


def calibrate_vision(env: Any) -> CalibrationResult:
    """Calibrate the overhead camera of a reset VisionSort cell in the plant (see module)."""
    cell = env.unwrapped
    camera = dataclasses.replace(cell.true_camera(), size_px=CAPTURE_PX)
    believed = dataclasses.replace(cell.believed_camera(), size_px=CAPTURE_PX)
    corners = [
        _match_order(_find_corners(_capture(cell, camera, top_m)), believed, top_m)
        for top_m in TARGET_HEIGHTS_M
    ]
    points = np.concatenate([object_points_m(top_m) for top_m in TARGET_HEIGHTS_M])
    corners = np.concatenate(corners)
    shift_mm, rotation_deg, reprojection_px = _solve_pose(camera, points, corners)
    values = {
        "believed_camera_shift_mm": tuple(float(v) for v in shift_mm),
        "believed_camera_rotation_deg": tuple(float(v) for v in rotation_deg),
    }
    truth = cell.true_camera()
    duration_s = _routine_time_s(cell)
    return CalibrationResult(
        values=values,
        error_before=camera_error(cell.believed_camera(), truth),
        error_after=camera_error(_camera_from(truth, shift_mm, rotation_deg), truth),
        duration_s=duration_s,
        energy_j=standby_energy_j(duration_s, SUCTION_PUMP_W / 2.0),
        method="chessboard 9x6 x 12 mm at two heights: findChessboardCorners, cornerSubPix, "
        "solvePnP",
        detail={
            "reprojection_px": reprojection_px,
            "n_points": len(corners),
            "image_px": CAPTURE_PX,
            "energy": "estimate: standby + suction pump half the time, drives not metered",
        },
    )


def camera_error(believed: OverheadCamera, truth: OverheadCamera) -> dict[str, float]:
    """Rotation (deg, angle between the two) and shift (mm, distance) of belief vs truth."""
    turn = Rotation.from_matrix(believed.rotation.T @ truth.rotation)
    shift = np.asarray(believed.shift_m) - np.asarray(truth.shift_m)
    return {
        "rotation_deg": float(np.degrees(turn.magnitude())),
        "shift_mm": float(1000.0 * np.linalg.norm(shift)),
    }


def object_points_m(top_m: float = TARGET_TOP_M) -> np.ndarray:
    """World corners of the target, in the order a mounted camera reads them (row-major)."""
    cols, rows = INNER_CORNERS
    c, r = np.meshgrid(np.arange(cols), np.arange(rows))
    x = TRAY_CENTRE_M[0] + ((rows - 1) / 2.0 - r) * SQUARE_M  # rows run from +x down
    y = TRAY_CENTRE_M[1] + ((cols - 1) / 2.0 - c) * SQUARE_M  # columns from +y right
    return np.stack([x, y, np.full_like(x, top_m)], -1).reshape(-1, 3).astype(float)


def _target_boxes(top_m: float) -> list[tuple[str, tuple[float, float, float], tuple, tuple]]:
    """(name, half extents, centre, rgba) of the plate and its black squares."""
    cols, rows = INNER_CORNERS[0] + 1, INNER_CORNERS[1] + 1
    half = (rows * SQUARE_M / 2 + BORDER_M, cols * SQUARE_M / 2 + BORDER_M, 0.0005)
    x0, y0, _ = TRAY_CENTRE_M
    boxes = [("calibration_plate", half, (x0, y0, top_m - 0.0005), (0.95,) * 3 + (1,))]
    for r in range(rows):
        for c in range(cols):
            if (r + c) % 2:
                continue
            x = x0 + ((rows - 1) / 2.0 - r) * SQUARE_M
            y = y0 + ((cols - 1) / 2.0 - c) * SQUARE_M
            size = (SQUARE_M / 2, SQUARE_M / 2, 0.0001)
            boxes.append((f"calibration_sq_{r}_{c}", size, (x, y, top_m), (0.05,) * 3 + (1,)))
    return boxes


def _capture(cell: Any, camera: OverheadCamera, top_m: float) -> np.ndarray:
    """One grey frame of the target on the empty tray through ``camera``; target removed."""
    client = cell.task.render_client
    client.sync({})  # the tray is cleared for the routine
    sim = client.sim
    top = np.asarray(TRAY_CENTRE_M)
    boxes = [("calibration_tray", TRAY_HALF_M, (*top[:2], top[2] - TRAY_HALF_M[2]),
              (*TRAY_RGB, 1.0)), *_target_boxes(top_m)]  # fmt: skip
    try:
        for name, half, centre, rgba in boxes:
            sim.create_box(name, half, centre, rgba=rgba, collision=False)
        size = CAPTURE_PX * SUPERSAMPLE
        rgb, _ = sim.camera_image(
            size, size, camera.view_matrix(), camera.projection_matrix(), client.light
        )
    finally:
        for name, *_ in boxes:
            if sim.has_body(name):
                sim.remove_body(name)
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)
    # The sensor integrates light over each pixel: average the supersampled pixels.
    binned = grey.reshape(CAPTURE_PX, SUPERSAMPLE, CAPTURE_PX, SUPERSAMPLE).mean(axis=(1, 3))
    return np.rint(binned).astype(np.uint8)


def _find_corners(grey: np.ndarray) -> np.ndarray:
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
    found, corners = cv2.findChessboardCorners(grey, INNER_CORNERS, flags=flags)
    if not found:
        raise RobocellError("calibration target not found in the camera image")
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 1e-4)
    corners = cv2.cornerSubPix(grey, corners, (5, 5), (-1, -1), criteria)
    return corners.reshape(-1, 2).astype(float)


def _match_order(corners: np.ndarray, believed: OverheadCamera, top_m: float) -> np.ndarray:
    """The corners in object-point order: OpenCV may read the board from either end."""
    predicted = believed.world_to_pixel(object_points_m(top_m))
    if np.linalg.norm(corners[0] - predicted[0]) > np.linalg.norm(corners[-1] - predicted[0]):
        return corners[::-1].copy()
    return corners


def _intrinsics(camera: OverheadCamera) -> np.ndarray:
    """Pinhole matrix of the binned image in OpenCV pixels (centres at integers).

    From the camera model at the rendered (supersampled) size; binning S × S pixels puts
    a binned pixel's centre at rendered coordinate S · j + (S − 1) / 2.
    """
    rendered = dataclasses.replace(
        camera, size_px=CAPTURE_PX * SUPERSAMPLE, shift_m=(0.0, 0.0, 0.0),
        rotation_deg=(0.0, 0.0, 0.0),
    )  # fmt: skip
    focal_px = 0.5 * rendered.size_px / np.tan(np.radians(rendered.fov_deg) / 2.0)
    centre = rendered.world_to_pixel(np.asarray(rendered.centre_m)) - 0.5
    cx, cy = (centre - (SUPERSAMPLE - 1) / 2.0) / SUPERSAMPLE
    focal_px /= SUPERSAMPLE
    return np.array([[focal_px, 0.0, cx], [0.0, focal_px, cy], [0.0, 0.0, 1.0]])


def _solve_pose(
    camera: OverheadCamera, points: np.ndarray, corners: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Shift off the mount (mm), extrinsic xyz rotation (deg) and RMS reprojection (px)."""
    matrix = _intrinsics(camera)
    ok, rvec, tvec = cv2.solvePnP(points, corners, matrix, None, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        raise RobocellError("solvePnP found no camera pose for the calibration target")
    rvec, tvec = cv2.solvePnPRefineLM(points, corners, matrix, None, rvec, tvec)
    projected, _ = cv2.projectPoints(points, rvec, tvec, matrix, None)
    rms_px = float(np.sqrt(np.mean(np.sum((projected.reshape(-1, 2) - corners) ** 2, axis=1))))
    world_from_cv = cv2.Rodrigues(rvec)[0].T
    eye_m = -world_from_cv @ tvec.reshape(3)
    mount_m = np.asarray(camera.centre_m) + np.array([0.0, 0.0, camera.height_m])
    rotation = world_from_cv @ CV_AXES_ON_MOUNT.T
    rotation_deg = Rotation.from_matrix(rotation).as_euler("xyz", degrees=True)
    return 1000.0 * (eye_m - mount_m), rotation_deg, rms_px


def _camera_from(
    camera: OverheadCamera, shift_mm: np.ndarray, rotation_deg: np.ndarray
) -> OverheadCamera:
    return dataclasses.replace(
        camera,
        shift_m=tuple(float(v) / 1000.0 for v in shift_mm),
        rotation_deg=tuple(float(v) for v in rotation_deg),
    )


def _routine_time_s(cell: Any) -> float:
    """Fetch the target from its holder, lay it at the tray centre, back off, capture, return."""
    planner = cell.task.planner
    home = planner.solve((*TRAY_CENTRE_M[:2], TRAVEL_HEIGHT_M))
    holder = planner.solve(TARGET_HOLDER_M)
    place = planner.solve((*TRAY_CENTRE_M[:2], TARGET_TOP_M + 0.002), seed=home)
    legs = [(home, holder), (holder, home), (home, place), (place, holder)]
    speeds = planner.arm.max_speed_rad_s
    one_way = sum(move_time_s(a, b, speeds) for a, b in legs)
    return 2.0 * (2.0 * one_way + EXPOSURE_S)  # once per target height
