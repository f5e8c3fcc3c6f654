"""Observation-normaliser statistics as JSON, exactly as SB3's ``VecNormalize`` applies them.

Training writes these files; export bakes them into the ONNX graph, so the JSON is the
single source of truth (never only a pickle). The format::

    {"format": "robocell-normalizer/1", "clip_obs": 10.0, "epsilon": 1e-8,
     "obs": {"mean": [...], "var": [...], "count": 12345.0}}            # Box observations
    {"format": "robocell-normalizer/1", "clip_obs": 10.0, "epsilon": 1e-8,
     "obs": {"state": {"mean": [...], "var": [...], "count": 1.0}}}     # Dict observations

For Dict observations only the listed keys are normalised (images never). ``"obs"`` is null
when observations are not normalised. The transform is
``clip((obs - mean) / sqrt(var + epsilon), -clip_obs, clip_obs)`` as float32. Reward
normalisation is training-only and is not part of this file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robocell.errors import RobocellError
from robocell.util import atomic_write_json

FORMAT = "robocell-normalizer/1"


@dataclass
class RunningStats:
    """Running mean, variance and sample count of one observation array (float64)."""

    mean: np.ndarray
    var: np.ndarray
    count: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data; float64 values round-trip exactly through ``json``."""
        return {
            "mean": np.asarray(self.mean, dtype=np.float64).tolist(),
            "var": np.asarray(self.var, dtype=np.float64).tolist(),
            "count": float(self.count),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> RunningStats:
        """Read ``{"mean", "var", "count"}``; a bad entry raises RobocellError naming ``where``."""
        if not isinstance(data, dict) or set(data) != {"mean", "var", "count"}:
            raise RobocellError(f"{where}: expected keys mean, var, count")
        try:
            mean = np.asarray(data["mean"], dtype=np.float64)
            var = np.asarray(data["var"], dtype=np.float64)
            count = float(data["count"])
        except (TypeError, ValueError):
            raise RobocellError(f"{where}: mean, var and count must be numbers") from None
        if mean.shape != var.shape:
            raise RobocellError(f"{where}: mean has shape {mean.shape}, var {var.shape}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(var)) and np.all(var >= 0)):
            raise RobocellError(f"{where}: mean and var must be finite, var >= 0")
        return cls(mean, var, count)

    @classmethod
    def from_rms(cls, rms: Any) -> RunningStats:
        """Copy an SB3 ``RunningMeanStd``."""
        return cls(
            np.array(rms.mean, dtype=np.float64),
            np.array(rms.var, dtype=np.float64),
            float(rms.count),
        )

    def copy_into(self, rms: Any) -> None:
        """Overwrite an SB3 ``RunningMeanStd`` with these statistics."""
        rms.mean = self.mean.copy()
        rms.var = self.var.copy()
        rms.count = self.count


ObsStats = RunningStats | dict[str, RunningStats] | None


@dataclass
class NormalizerStats:
    """Observation normalisation of a trained policy (see the module docstring)."""

    clip_obs: float
    epsilon: float
    obs: ObsStats

    # ------------------------------------------------------------------ transform
    def normalize(self, obs: Any) -> Any:
        """Normalise one raw observation (or a batch): an array, or a dict for Dict spaces."""
        if self.obs is None:
            return obs
        if isinstance(self.obs, dict):
            if not isinstance(obs, dict):
                raise TypeError("these statistics are for Dict observations")
            out = dict(obs)
            for key, stats in self.obs.items():
                out[key] = self._apply(obs[key], stats)
            return out
        return self._apply(obs, self.obs)

    def _apply(self, values: Any, stats: RunningStats) -> np.ndarray:
        scaled = (np.asarray(values) - stats.mean) / np.sqrt(stats.var + self.epsilon)
        return np.clip(scaled, -self.clip_obs, self.clip_obs).astype(np.float32)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """The JSON document (``format``, ``clip_obs``, ``epsilon``, ``obs``)."""
        if self.obs is None:
            obs = None
        elif isinstance(self.obs, dict):
            obs = {key: stats.to_dict() for key, stats in self.obs.items()}
        else:
            obs = self.obs.to_dict()
        return {"format": FORMAT, "clip_obs": self.clip_obs, "epsilon": self.epsilon, "obs": obs}

    def to_json(self, path: str | Path) -> None:
        """Write the statistics atomically to ``path``."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, where: str = "normalizer") -> NormalizerStats:
        """Parse the JSON document; anything malformed raises RobocellError naming it."""
        if not isinstance(data, dict):
            raise RobocellError(f"{where}: expected a JSON object")
        if data.get("format") != FORMAT:
            raise RobocellError(f"{where}: format must be {FORMAT!r}, got {data.get('format')!r}")
        unknown = sorted(set(data) - {"format", "clip_obs", "epsilon", "obs"})
        if unknown:
            raise RobocellError(f"{where}: unknown key {unknown[0]!r}")
        clip_obs = _positive(data.get("clip_obs"), f"{where}: clip_obs")
        epsilon = _positive(data.get("epsilon"), f"{where}: epsilon")
        return cls(clip_obs, epsilon, _parse_obs(data.get("obs"), f"{where}: obs"))

    @classmethod
    def from_json(cls, path: str | Path) -> NormalizerStats:
        """Read a normaliser JSON file written by :meth:`to_json`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise RobocellError(f"{path}: no such normaliser file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RobocellError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_dict(data, str(path))

    # ------------------------------------------------------------------ SB3
    @classmethod
    def from_vecnormalize(cls, vec: Any) -> NormalizerStats:
        """Snapshot the observation statistics of an SB3 ``VecNormalize``."""
        obs: ObsStats = None
        if vec.norm_obs:
            if isinstance(vec.obs_rms, dict):
                obs = {key: RunningStats.from_rms(rms) for key, rms in vec.obs_rms.items()}
            else:
                obs = RunningStats.from_rms(vec.obs_rms)
        return cls(float(vec.clip_obs), float(vec.epsilon), obs)

    def copy_into(self, vec: Any) -> None:
        """Load these observation statistics into an SB3 ``VecNormalize`` of the same shape."""
        if self.obs is None or not vec.norm_obs:
            return
        if isinstance(self.obs, dict):
            for key, stats in self.obs.items():
                stats.copy_into(vec.obs_rms[key])
        else:
            self.obs.copy_into(vec.obs_rms)


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RobocellError(f"{where}: expected a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise RobocellError(f"{where}: must be a positive finite number, got {value!r}")
    return float(value)


def _parse_obs(data: Any, where: str) -> ObsStats:
    if data is None:
        return None
    if isinstance(data, dict) and set(data) == {"mean", "var", "count"}:
        return RunningStats.from_dict(data, where)
    if isinstance(data, dict) and data:
        return {str(k): RunningStats.from_dict(v, f"{where}.{k}") for k, v in data.items()}
    raise RobocellError(f"{where}: expected mean/var/count or a mapping of observation keys")
