"""The vision cell's scripted controller: a classical machine-vision pipeline."""

from __future__ import annotations

from typing import Any

import numpy as np

from robocell.envs.vision.camera import Blob, OverheadCamera, detect_parts
from robocell.envs.vision.pick_grid import PickGrid
from robocell.envs.vision.scene import PART_HALF_M, PART_TOP_M, TRAY_CENTRE_M


class ScriptedSorter:
    """Sorts parts seeing only the camera image, with the camera's calibration.

    Pipeline: blob detection against the tray's colour (:func:`detect_parts`); each blob's
    centroid mapped onto the plane of the parts' top faces through the camera model; a
    two-rule classifier — defective when the blob's mean redness r / (r + g + b) exceeds
    0.40 (bare aluminium reads about 0.33, a heat-tinted part about 0.48) or when at least
    3 of its pixels are darker than 0.35 × its median brightness (a mark). It picks the
    blobs in image order and avoids a pick point that came up empty before. Its actions
    are in the env's action mode (a grid cell and bin, or a continuous pick point).

    Args:
        env: the (unwrapped) cell; its camera model and action encoding are used.
    """

    redness_limit = 0.40
    dark_px_limit = 3
    # Imitation targets on a pick grid: every cell within 6 mm of a detected centre (the cup
    # seals up to 15 mm off centre), weighted by a Gaussian of 2 mm (the centroid's error).
    target_radius_m = 0.006
    target_sigma_m = 0.002

    def __init__(self, env: Any) -> None:
        self._task = env.task  # its camera and grid are the belief, which a line may update
        self.encode = env.task.encode_action
        self.part_area_px = (2.0 * PART_HALF_M[0] / self.camera.metres_per_px) ** 2
        self.failed_xy: list[np.ndarray] = []
        self._last_xy: np.ndarray | None = None

    @property
    def camera(self) -> OverheadCamera:
        """The camera model the controller believes (the calibration)."""
        return self._task.camera

    @property
    def grid(self) -> PickGrid | None:
        """The pick grid, built on the believed camera."""
        return self._task.grid

    def reset(self) -> None:
        """Forget the previous episode's empty picks."""
        self.failed_xy = []
        self._last_xy = None

    def is_defective(self, blob: Blob) -> bool:
        """The classifier: discoloured or marked."""
        return blob.redness > self.redness_limit or blob.dark_px >= self.dark_px_limit

    def detect(self, image: np.ndarray) -> list[tuple[np.ndarray, str]]:
        """Every part seen, in image order: its pick point (x, y) in metres and its bin."""
        blobs = detect_parts(image, min_area_px=0.3 * self.part_area_px)
        if not blobs:
            return []
        centres = np.array([b.centre_px for b in blobs])
        points = self.camera.pixel_to_world(centres, PART_TOP_M)[:, :2]
        return [
            (xy, "ng" if self.is_defective(blob) else "ok")
            for xy, blob in zip(points, blobs, strict=True)
        ]

    def candidate_actions(self, obs: dict[str, np.ndarray]) -> dict[Any, float]:
        """Right actions for every part seen, with weights (imitation targets).

        On a pick grid: every cell within ``target_radius_m`` of a part's centre, with the
        part's bin, weighted exp(−d² / 2σ²); else the action at each centre, weight 1.
        """
        targets: dict[Any, float] = {}
        for xy, bin_name in self.detect(obs["image"]):
            targets.update(self._targets_at(xy, bin_name))
        return targets

    def outcome_targets(
        self, obs: dict[str, np.ndarray], action: Any, info: dict[str, Any]
    ) -> dict[Any, float]:
        """Right actions for the part this step picked, in the bin its outcome shows.

        The step's reward terms say where the part went: its right bin (``correct``), or the
        wrong one (``scrap``: a good part in NG, ``escape``: a defective part in OK); so the
        picked part's right bin is known whichever bin was chosen (hindsight relabelling of
        a two-bin choice). The targets are those of the detected part nearest the pick, in
        that bin; after a step with no outcome (an empty pick, a part lost, nothing seen
        near the pick) the sorter's own candidates.
        """
        xy, chosen = self._task.decode_action(action)
        if info.get("reward/scrap", 0.0) < 0.0:
            right = "ok"
        elif info.get("reward/escape", 0.0) < 0.0:
            right = "ng"
        elif info.get("reward/correct", 0.0) > 0.0:
            right = chosen
        else:
            return self.candidate_actions(obs)
        seen = [centre for centre, _ in self.detect(obs["image"])]
        near = [c for c in seen if np.linalg.norm(c - xy) <= PART_HALF_M[0]]
        if not near:
            return self.candidate_actions(obs)
        return self._targets_at(min(near, key=lambda c: np.linalg.norm(c - xy)), right)

    def _targets_at(self, xy: np.ndarray, bin_name: str) -> dict[Any, float]:
        """On a pick grid every cell within ``target_radius_m`` of ``xy``, weighted
        exp(−d² / 2σ²); else the action at ``xy``, weight 1."""
        if self.grid is None:
            return {self.encode(xy, bin_name): 1.0}
        targets: dict[Any, float] = {}
        for row, col, distance in self.grid.cells_near(xy, self.target_radius_m):
            weight = float(np.exp(-0.5 * (distance / self.target_sigma_m) ** 2))
            targets[self.grid.index(row, col, bin_name)] = weight
        return targets

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Pick the next part seen and choose its bin."""
        if self._last_xy is not None and obs["state"][1] > 0.5:
            self.failed_xy.append(self._last_xy)
        parts = self.detect(obs["image"])
        if not parts:
            return self.encode(np.asarray(TRAY_CENTRE_M[:2]), "ok")  # a harmless pick
        fresh = [
            i
            for i, (xy, _) in enumerate(parts)
            if all(np.linalg.norm(xy - failed) > 0.01 for failed in self.failed_xy)
        ]
        xy, bin_name = parts[fresh[0] if fresh else 0]
        self._last_xy = xy
        return self.encode(xy, bin_name)
