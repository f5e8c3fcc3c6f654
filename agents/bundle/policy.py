"""A loaded bundle: :func:`load_bundle`, :class:`BundlePolicy` and the inference session.

Loading goes through the one gate (:func:`robocell.agents.bundle.intake.check_bundle`) and
uses onnxruntime and numpy only: nothing here imports torch or stable-baselines3.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort

from robocell.agents.bundle.guard import clip_observation
from robocell.agents.bundle.intake import MAX_ONNX_BYTES, check_bundle
from robocell.agents.bundle.manifest import ONNX_FILE
from robocell.envs.rollout import CLIPPED_OBSERVATIONS, POLICY_FAULTS, HaltEpisode
from robocell.errors import RobocellError, VerificationError
from robocell.util import sha256_bytes

if TYPE_CHECKING:
    import gymnasium as gym


def inference_session(onnx_bytes: bytes) -> ort.InferenceSession:
    """An onnxruntime CPU session for one-observation control: one thread, sequential."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Never let bytes that happen to look like the ORT flatbuffer format be read as one.
    options.add_session_config_entry("session.load_model_format", "ONNX")
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


class BundlePolicy:
    """A loaded, verified bundle: ``act(obs)`` maps one raw env observation to an action.

    ``act`` counts, per episode (``reset()`` starts one), the observations the graph's guard
    faulted and those it clipped to the manifest's ranges (``episode_counts()``). A faulted
    observation's action is the cell's safe action; a cell without one (a pick) raises
    :class:`robocell.envs.rollout.HaltEpisode` instead, so the pick is never executed.
    """

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        manifest_sha256: str,
        session: ort.InferenceSession,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.manifest_sha256 = manifest_sha256
        self.onnx_sha256: str = manifest["onnx_sha256"]
        self.env_id: str = manifest["env_id"]
        self.env_kwargs: dict[str, Any] = dict(manifest["env_kwargs"])
        self.control_period_s: float | None = manifest["control_period_s"]
        self._session = session
        inputs = manifest["observation"]
        self._inputs = inputs
        self._names = [item["name"] for item in inputs]
        self._keys = [item["key"] for item in inputs]
        self._dtypes = [np.dtype(item["dtype"]) for item in inputs]
        self._shapes = [tuple(item["shape"]) for item in inputs]
        self._output_names = [manifest["action"]["name"], manifest["fault"]["name"]]
        self._has_safe_action = manifest["action"].get("safe_action") is not None
        self.faults = 0
        self.clipped_observations = 0

    def reset(self) -> None:
        """A new episode: the fault and clip counts start from zero."""
        self.faults = 0
        self.clipped_observations = 0

    def episode_counts(self) -> dict[str, float]:
        """This episode's faulted and clipped observations."""
        return {
            POLICY_FAULTS: float(self.faults),
            CLIPPED_OBSERVATIONS: float(self.clipped_observations),
        }

    def act(self, obs: Any) -> np.ndarray:
        """The action for one observation (an array, or a mapping for Dict observations)."""
        action, fault = self.act_with_fault(obs)
        if fault and not self._has_safe_action:
            raise HaltEpisode(f"{self.path}: faulted observation; its action is not executed")
        return action

    __call__ = act

    def act_with_fault(self, obs: Any) -> tuple[np.ndarray, bool]:
        """The action for one observation and the guard's fault flag; counts both."""
        feed = self._feed(obs, batched=False)
        action, fault = self._session.run(self._output_names, feed)
        self.faults += int(fault[0])
        self.clipped_observations += int(clip_observation(obs, self._inputs)[1])
        return action[0], bool(fault[0])

    def act_batch(self, obs: Any) -> np.ndarray:
        """Actions for a batch of observations (leading dimension = batch)."""
        return self.run_batch(obs)[0]

    def run_batch(self, obs: Any) -> tuple[np.ndarray, np.ndarray]:
        """Actions and fault flags (bool, one per row) for a batch of observations."""
        action, fault = self._session.run(self._output_names, self._feed(obs, batched=True))
        return action, fault

    def make_env(self, render_mode: str | None = None) -> gym.Env:
        """The cell this bundle was exported for, with its kwargs; checks the spaces agree.

        The env comes from :func:`robocell.envs.make.make_cell`, so every episode ends with
        ``episode_metrics``.
        """
        from robocell.envs.make import make_cell

        env = make_cell(self.env_id, self.env_kwargs, render_mode)
        try:
            self.check_observation_space(env.observation_space)
            self.check_action_space(env.action_space)
            self.check_action_grid(getattr(env.unwrapped, "action_grid", None))
        except BaseException:
            env.close()
            raise
        return env

    def check_observation_space(self, space: Any) -> None:
        """Raise VerificationError unless ``space`` has the manifest's keys, shapes and dtypes."""
        for key, shape, dtype in zip(self._keys, self._shapes, self._dtypes, strict=True):
            sub = space if key is None else getattr(space, "spaces", {}).get(key)
            if sub is None or tuple(sub.shape) != shape or np.dtype(sub.dtype) != dtype:
                found = None if sub is None else (tuple(sub.shape), str(sub.dtype))
                raise VerificationError(
                    f"{self.path}: the bundle takes {key or 'obs'} as {shape} {dtype}, "
                    f"but {self.env_id} observes {found}"
                )

    def check_action_space(self, space: Any) -> None:
        """Raise VerificationError unless ``space`` has the manifest's action shape and bounds."""
        action = self.manifest["action"]
        low = [np.nan if f["low"] is None else f["low"] for f in action["fields"]]
        high = [np.nan if f["high"] is None else f["high"] for f in action["fields"]]
        if action["kind"] == "box" and hasattr(space, "low"):
            found_low = np.where(np.isfinite(space.low), space.low, np.nan).ravel()
            found_high = np.where(np.isfinite(space.high), space.high, np.nan).ravel()
            same = np.array_equal(found_low, np.float32(low), equal_nan=True) and (
                np.array_equal(found_high, np.float32(high), equal_nan=True)
            )
        elif action["kind"] == "discrete":
            same = getattr(space, "n", None) == int(high[0]) + 1 and not hasattr(space, "low")
        else:
            same = action["kind"] != "box" and not hasattr(space, "low")
        if not same or list(space.shape) != action["shape"]:
            raise VerificationError(
                f"{self.path}: the bundle acts in {action['kind']} {action['shape']} within "
                f"{low}…{high}, but {self.env_id} takes {space}"
            )

    def check_action_grid(self, grid: dict[str, Any] | None) -> None:
        """Raise VerificationError unless the cell's pick grid is the manifest's (or neither)."""
        expected = self.manifest["action"].get("grid")
        if expected is not None and grid != expected:
            raise VerificationError(
                f"{self.path}: the bundle picks on the grid {expected}, "
                f"but {self.env_id} has {grid}"
            )

    def action_in_bounds(self, action: Any) -> bool:
        """True when ``action`` has the manifest's shape, is finite and lies within its bounds.

        The bounds are the manifest's ``low``/``high`` (None: unbounded), widened by a few
        float32 rounding steps so that an exact clip or unscale in the graph is inside.
        """
        spec = self.manifest["action"]
        value = np.asarray(action, dtype=np.float64)
        if list(value.shape) != spec["shape"] or not np.all(np.isfinite(value)):
            return False
        flat = value.ravel()
        for index, field in enumerate(spec["fields"]):
            if not _within(flat[index], field["low"], field["high"]):
                return False
        return True

    def _feed(self, obs: Any, batched: bool) -> dict[str, np.ndarray]:
        feed = {}
        for name, key, dtype, shape in zip(
            self._names, self._keys, self._dtypes, self._shapes, strict=True
        ):
            value = obs if key is None else _item(obs, key)
            array = np.asarray(value, dtype=dtype)
            expected = array.shape[:1] + shape if batched else shape
            if array.shape != expected:
                raise RobocellError(f"{name}: expected shape {expected}, got {array.shape}")
            feed[name] = array if batched else array.reshape((1, *shape))
        return feed


# float32 rounding steps allowed beyond a bound: a clip or an unscale computed in float32
# may land a step or two off; a controller scaling the output cannot tell them apart.
_BOUND_ULPS = 4


def _within(value: float, low: float | None, high: float | None) -> bool:
    def slack(bound: float) -> float:
        return _BOUND_ULPS * float(np.spacing(np.float32(abs(bound))))

    if low is not None and value < low - slack(low):
        return False
    return high is None or value <= high + slack(high)


def _item(obs: Any, key: str) -> Any:
    if not isinstance(obs, Mapping) or key not in obs:
        raise RobocellError(f"this bundle takes a Dict observation with key {key!r}")
    return obs[key]


def load_bundle(path: str | Path, max_onnx_bytes: int = MAX_ONNX_BYTES) -> BundlePolicy:
    """Verify a bundle directory (every intake check) and load it for inference."""
    bundle = check_bundle(path, max_onnx_bytes)
    try:
        session = inference_session(bundle.onnx_bytes)
    except Exception as exc:  # onnxruntime raises its own exception types
        where = bundle.directory / ONNX_FILE
        raise VerificationError(f"{where}: onnxruntime cannot load it ({exc})") from None
    return BundlePolicy(
        bundle.directory, bundle.manifest, sha256_bytes(bundle.manifest_bytes), session
    )
