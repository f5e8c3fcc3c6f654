"""Controller bundles: the format, :func:`load_bundle`, :class:`BundlePolicy`, :func:`export_run`.

A bundle is a directory with two files::

    BUNDLE_DIR/policy.onnx     opset >= 17, ONNX default domain only, no external data;
                               inputs: ``obs`` (Box observation) or ``obs.<key>`` (one per
                               Dict key), raw env values with a leading batch dimension;
                               output: ``action`` in the env's action units, within bounds.
                               Normalisation, the deterministic action and the squashing or
                               clipping to the action bounds are all inside the graph.
    BUNDLE_DIR/manifest.json   see :class:`robocell.agents.bundle_manifest.BundleManifest`

Loading uses onnxruntime and numpy only: importing this module does not import torch or
stable-baselines3 (the torch side lives in :mod:`robocell.agents.export_torch` and is only
imported by :func:`export_run`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import onnxruntime as ort

from robocell.agents.bundle_intake import (
    MAX_ONNX_BYTES,
    bundle_directory,
    check_structure,
    default_opset,
    parse_onnx,
    read_capped,
    read_manifest_json,
    value_signature,
)
from robocell.agents.bundle_manifest import (
    MANIFEST_FILE,
    ONNX_FILE,
    BundleManifest,
    manifest_dict,
    metadata_props,
    parse_manifest,
)
from robocell.errors import RobocellError, VerificationError
from robocell.schema import SchemaError
from robocell.util import sha256_bytes

if TYPE_CHECKING:
    import gymnasium as gym

__all__ = [
    "MANIFEST_FILE",
    "MAX_ONNX_BYTES",
    "ONNX_FILE",
    "BundlePolicy",
    "ExportReport",
    "export_run",
    "inference_session",
    "load_bundle",
    "write_bundle",
]


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_run` wrote and what its checks found."""

    bundle_dir: Path
    onnx_sha256: str
    manifest_sha256: str
    parity_observations: int
    """Observations recorded from rollouts and compared."""
    boundary_cases: int
    """Edge-case observations compared as well."""
    max_abs_diff: float
    """Largest |onnxruntime action − torch/SB3 action| over all compared observations."""
    worst_ratio: float
    """Largest |Δa| / (1e-5 + 1e-3·|a|): the check passed, so it is <= 1."""
    closed_loop: list[dict[str, float]]
    """Per replayed episode: seed, success and steps with the trained model and the bundle."""
    notes: list[str] = field(default_factory=list)
    """Remarks for the user (e.g. fields the env does not describe)."""
    argmax_ties: int = 0
    """Discrete actions: observations where the graph chose another action of equal
    probability (see ``check_parity``)."""

    @property
    def closed_loop_matches(self) -> int:
        """Replayed episodes whose success agrees between model and bundle."""
        return sum(row["success_torch"] == row["success_bundle"] for row in self.closed_loop)


def export_run(
    run_dir: str | Path,
    bundle_dir: str | Path,
    checkpoint: str | Path = "best",
    *,
    parity_observations: int = 1000,
    closed_loop_episodes: int = 3,
    overwrite: bool = False,
) -> ExportReport:
    """Export a training run's checkpoint (``best``, ``last`` or a zip path) as a bundle.

    Checks parity on at least ``parity_observations`` recorded observations plus boundary
    cases and compares ``closed_loop_episodes`` episode outcomes with the trained model;
    raises RobocellError (and writes nothing) when either check fails.
    """
    from robocell.agents.export_torch import export_run as _export_run

    return _export_run(
        run_dir,
        bundle_dir,
        checkpoint,
        parity_observations=parity_observations,
        closed_loop_episodes=closed_loop_episodes,
        overwrite=overwrite,
    )


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
    """A loaded, verified bundle: ``act(obs)`` maps one raw env observation to an action."""

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
        self._names = [item["name"] for item in inputs]
        self._keys = [item["key"] for item in inputs]
        self._dtypes = [np.dtype(item["dtype"]) for item in inputs]
        self._shapes = [tuple(item["shape"]) for item in inputs]
        self._output_names = [manifest["action"]["name"]]

    def act(self, obs: Any) -> np.ndarray:
        """The action for one observation (an array, or a mapping for Dict observations)."""
        return self._session.run(self._output_names, self._feed(obs, batched=False))[0][0]

    __call__ = act

    def act_batch(self, obs: Any) -> np.ndarray:
        """Actions for a batch of observations (leading dimension = batch)."""
        return self._session.run(self._output_names, self._feed(obs, batched=True))[0]

    def make_env(self, render_mode: str | None = None) -> gym.Env:
        """The cell this bundle was exported for, with its kwargs; checks the spaces agree.

        The env is wrapped in :class:`robocell.agents.cell_info.EpisodeFigures`, so every
        episode ends with ``episode_metrics``.
        """
        from robocell.agents.cell_info import make_cell

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


def _item(obs: Any, key: str) -> Any:
    if not isinstance(obs, Mapping) or key not in obs:
        raise RobocellError(f"this bundle takes a Dict observation with key {key!r}")
    return obs[key]


def load_bundle(path: str | Path, max_onnx_bytes: int = MAX_ONNX_BYTES) -> BundlePolicy:
    """Verify a bundle directory and load it; raises VerificationError naming what failed.

    Checks, in order: it is a directory (a ``.zip``/``.pkl``/``.pt``/``.pth`` path is refused
    unopened), the manifest's schema, the ONNX size cap, the ONNX sha256 against the manifest,
    default-domain ops only, no external data, the opset and IR version, that the ONNX
    metadata mirrors the manifest, and the graph's input and output shapes.
    """
    directory = bundle_directory(path)
    manifest_path, onnx_path = directory / MANIFEST_FILE, directory / ONNX_FILE
    data, manifest_bytes = read_manifest_json(manifest_path)
    try:
        manifest = parse_manifest(data)
    except SchemaError as exc:
        raise VerificationError(f"{manifest_path}: {exc}") from None
    onnx_bytes = read_capped(onnx_path, max_onnx_bytes)
    digest = sha256_bytes(onnx_bytes)
    if digest != manifest.onnx_sha256:
        raise VerificationError(
            f"{onnx_path}: sha256 {digest} does not match the manifest's {manifest.onnx_sha256}"
        )
    model = parse_onnx(onnx_bytes, onnx_path)
    check_against_manifest(model, manifest, data, onnx_path)
    try:
        session = inference_session(onnx_bytes)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise VerificationError(f"{onnx_path}: onnxruntime cannot load it ({exc})") from None
    return BundlePolicy(directory, data, sha256_bytes(manifest_bytes), session)


def check_against_manifest(
    model: onnx.ModelProto, manifest: BundleManifest, data: dict[str, Any], where: Path
) -> None:
    """Opset, IR version, metadata and input/output signatures must match the manifest."""
    if default_opset(model) != manifest.onnx_opset or model.ir_version != manifest.onnx_ir_version:
        raise VerificationError(
            f"{where}: opset {default_opset(model)} / IR {model.ir_version} differ from the "
            f"manifest's {manifest.onnx_opset} / {manifest.onnx_ir_version}"
        )
    _check_metadata(model, data, where)
    expected_inputs = [
        (item.name, item.dtype, [None, *item.shape]) for item in manifest.observation
    ]
    _check_signatures(model.graph.input, expected_inputs, "inputs", where)
    action = manifest.action
    _check_signatures(
        model.graph.output, [(action.name, action.dtype, [None, *action.shape])], "outputs", where
    )


def _check_metadata(model: onnx.ModelProto, data: dict[str, Any], where: Path) -> None:
    found = {prop.key: prop.value for prop in model.metadata_props}
    expected = metadata_props(data)
    for key in sorted(set(found) | set(expected)):
        if found.get(key) != expected.get(key):
            raise VerificationError(
                f"{where}: manifest field {key!r} differs from the copy in the ONNX metadata "
                "(the manifest was edited, or belongs to another graph)"
            )


def _check_signatures(
    values: Any, expected: list[tuple[str, str, list[int | None]]], what: str, where: Path
) -> None:
    found = [value_signature(value) for value in values]
    # The leading (batch) dimension may be symbolic or fixed; every other one is static.
    normalized = [(name, dtype, [None, *dims[1:]]) for name, dtype, dims in found if dims]
    if normalized != expected or len(found) != len(expected):
        raise VerificationError(
            f"{where}: graph {what} {found} do not match the manifest's {expected}"
        )


def write_bundle(
    bundle_dir: str | Path,
    model: onnx.ModelProto,
    manifest: dict[str, Any],
    overwrite: bool = False,
    check: Callable[[Path], None] | None = None,
) -> tuple[str, str]:
    """Write ``model`` and ``manifest`` as a bundle; returns (onnx sha256, manifest sha256).

    ``manifest`` holds every field but the ONNX ones (file, opset, IR version, sha256), which
    are filled in here; it is validated, copied into the model's ``metadata_props``, and both
    files appear at once (the bundle is assembled in a temporary sibling directory and
    renamed), so a crash never leaves half a bundle. ``check``, if given, is called with the
    complete temporary bundle before it is renamed into place; if it raises, nothing is kept.
    """
    bundle_dir = Path(bundle_dir)
    check_bundle_target(bundle_dir, overwrite)
    fields = {
        **manifest,
        "onnx_file": ONNX_FILE,
        "onnx_opset": default_opset(model),
        "onnx_ir_version": model.ir_version,
        "onnx_sha256": "0" * 64,
    }
    try:
        data = manifest_dict(parse_manifest(fields))
    except SchemaError as exc:
        raise RobocellError(f"manifest: {exc}") from None
    del model.metadata_props[:]
    for key, value in metadata_props(data).items():
        model.metadata_props.add(key=key, value=value)
    check_structure(model, ONNX_FILE)
    onnx_bytes = model.SerializeToString()
    data["onnx_sha256"] = sha256_bytes(onnx_bytes)
    manifest_bytes = (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
    files = {ONNX_FILE: onnx_bytes, MANIFEST_FILE: manifest_bytes}
    _write_directory(bundle_dir, files, overwrite, check)
    return data["onnx_sha256"], sha256_bytes(manifest_bytes)


def check_bundle_target(bundle_dir: Path, overwrite: bool) -> None:
    """Refuse to write over an existing, non-empty directory unless ``overwrite``."""
    if bundle_dir.exists() and not bundle_dir.is_dir():
        raise RobocellError(f"{bundle_dir}: exists and is not a directory")
    if bundle_dir.is_dir() and any(bundle_dir.iterdir()) and not overwrite:
        raise RobocellError(f"{bundle_dir}: exists and is not empty (pass --force to replace it)")


def _write_directory(
    target: Path, files: dict[str, bytes], overwrite: bool, check: Callable[[Path], None] | None
) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        os.chmod(staging, 0o755)  # mkdtemp makes it private; a bundle is meant to be shared
        for name, data in files.items():
            with open(staging / name, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        if check is not None:
            check(staging)
        if target.exists():
            check_bundle_target(target, overwrite)
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old."))
            os.replace(target, old / target.name)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
