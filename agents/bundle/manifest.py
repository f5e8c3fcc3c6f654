"""The bundle manifest: a typed schema for ``manifest.json`` and what a controller needs from it.

A bundle is a directory holding ``policy.onnx`` and ``manifest.json``. The manifest says what
the graph's inputs and output mean (fields in order, units, shapes, bounds), which cell and
settings the policy was trained for, the control period, and where it came from (run id,
config digest, checkpoint), and it binds the ONNX file by its sha256. Every manifest field
except ``onnx_sha256`` is also stored in the ONNX ``metadata_props`` (one entry per field, the
value as canonical JSON), so an edited manifest no longer matches the hashed graph.

This module imports neither torch nor SB3: certification and rollouts read bundles with
onnxruntime and numpy alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from robocell.schema import SchemaError, parse, to_dict
from robocell.util import canonical_json

SCHEMA_VERSION = "robocell-bundle/1"
ONNX_FILE = "policy.onnx"
MANIFEST_FILE = "manifest.json"
MIN_OPSET = 17
# Manifest fields that are not copied into the ONNX metadata (the digest covers the ONNX file).
NOT_IN_METADATA = frozenset({"onnx_sha256"})
# Parity tolerance of an export: |Δa| <= PARITY_ATOL + PARITY_RTOL * |a| for every component.
PARITY_ATOL = 1e-5
PARITY_RTOL = 1e-3

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_INPUT_DTYPES = ("float32", "uint8")
_OUTPUT_DTYPES = ("float32", "int64")
FAULT_DESCRIPTION = (
    "true for a row with a non-finite value (NaN, +inf, -inf) in any input: that row's action "
    "is action.safe_action (a discrete action: do not execute it) and the sensor needs "
    "attention; false otherwise. Finite values outside an observation field's low/high are "
    "clipped to them inside the graph, which is not a fault."
)
BATCH_DESCRIPTION = (
    "every input and output has a leading batch dimension of any size (1 for one control "
    "cycle); rows are independent: a faulted row changes no other row's action or flag"
)


@dataclass
class ObsField:
    """One element of a vector observation input, in row-major order."""

    name: str
    """What the element is, e.g. ``sensor_lateral``."""
    unit: str = ""
    """Its unit (SI or engineering, e.g. ``mm``, ``mm/s``, ``rad``, ``1`` for flags)."""
    description: str = ""
    """Free text from the cell."""
    low: float | None = None
    """Lowest value the cell produces (measured, with a margin; None: no range). The graph
    clips a finite value below it to it before normalisation."""
    high: float | None = None
    """Highest value the cell produces (measured, with a margin; None: no range)."""


@dataclass
class ActionField:
    """One element of the action output, in order, with the bounds the graph enforces.

    The output is what the cell's ``step`` takes. ``low``/``high`` bound the output itself;
    the physical command is ``output × scale``, in ``unit`` (e.g. an output in [-1, 1] with
    scale 20 and unit mm/s commands −20 … 20 mm/s).
    """

    name: str
    """What the element commands, e.g. ``travel_velocity``."""
    unit: str = ""
    """Unit of the physical command ``output × scale``."""
    low: float | None = None
    """Lower bound of the output (None: unbounded)."""
    high: float | None = None
    """Upper bound of the output (None: unbounded)."""
    scale: float = 1.0
    """Physical command per unit of output."""
    description: str = ""
    """Free text from the cell."""


@dataclass
class ObsInput:
    """One ONNX input: a Box observation, or one key of a Dict observation."""

    name: str
    """ONNX input name: ``obs`` for a Box observation, ``obs.<key>`` for a Dict key."""
    key: str | None
    """The Dict observation key, or None for a Box observation."""
    dtype: Literal["float32", "uint8"]
    """Element type the graph takes (images stay ``uint8``, 0–255)."""
    shape: list[int]
    """Shape of one observation, without the leading batch dimension."""
    layout: Literal["vector", "CHW", "HWC"]
    """``vector``: ``fields`` name every element; ``CHW``/``HWC``: an RGB image."""
    fields: list[ObsField] = field(default_factory=list)
    """Vector inputs: one entry per element (row-major); images: empty."""
    generic_fields: bool = False
    """True when the cell did not describe its fields and the names are ``obs[i]``."""


@dataclass
class ActionGrid:
    """A Discrete action that picks a cell of an image-aligned grid and a bin.

    The action index is ``bin·rows·cols + row·cols + col`` (``index``). Cell (row, col)
    covers the same part of the camera image at any image size: rows run from the image's
    top edge down, columns from its left edge to the right. Its pick point is the world
    point (x, y, ``plane_z_m``) with ``x = x_range_m[0] + (row + 0.5) / rows ·
    (x_range_m[1] − x_range_m[0])`` and likewise y over ``cols`` and ``y_range_m``.
    """

    rows: int
    """Cells from the image's top edge to its bottom edge."""
    cols: int
    """Cells from the image's left edge to its right edge."""
    bins: list[str]
    """Bin names in index order (``index // (rows·cols)``)."""
    x_range_m: list[float]
    """World x (m) at the image's top edge and at its bottom edge."""
    y_range_m: list[float]
    """World y (m) at the image's left edge and at its right edge."""
    plane_z_m: float
    """Height (m) of the plane the pick points lie on (the parts' top faces)."""
    index: Literal["bin*rows*cols + row*cols + col"]
    """How the action index is formed."""

    def validate(self) -> None:
        """Positive sizes, two-element ranges, at least one bin."""
        if self.rows < 1 or self.cols < 1 or not self.bins:
            raise SchemaError("action.grid", "needs rows >= 1, cols >= 1 and at least one bin")
        for name in ("x_range_m", "y_range_m"):
            if len(getattr(self, name)) != 2:
                raise SchemaError(f"action.grid.{name}", "needs two values (first, last edge)")

    @property
    def size(self) -> int:
        """Number of actions the grid names."""
        return self.rows * self.cols * len(self.bins)


@dataclass
class ActionOutput:
    """The ONNX output ``action``: the action to send to the cell, in its units."""

    name: str
    """ONNX output name (``action``)."""
    kind: Literal["box", "discrete", "multi_discrete"]
    """Gymnasium action space kind."""
    dtype: Literal["float32", "int64"]
    """Element type (``int64`` for discrete actions)."""
    shape: list[int]
    """Shape of one action, without the batch dimension (``[]`` for a Discrete action)."""
    fields: list[ActionField] = field(default_factory=list)
    """One entry per element (row-major)."""
    generic_fields: bool = False
    """True when the cell did not describe its fields and the names are ``action[i]``."""
    grid: ActionGrid | None = None
    """Discrete pick-over-image actions: what each index means (None for other actions)."""
    safe_action: list[float] | None = None
    """Box actions: the output of a faulted row, in output units (× ``scale`` for the
    physical command). None: the cell has no safe action (e.g. a pick); a faulted row's
    output is then zeros (clipped into bounds) and must not be executed."""
    safe_action_description: str = ""
    """What the safe action does in the cell."""


@dataclass
class FaultOutput:
    """The ONNX output ``fault``: one flag per row, true when the row's input was not finite."""

    name: Literal["fault"]
    """ONNX output name."""
    dtype: Literal["bool"]
    """Element type."""
    shape: list[int]
    """Shape of one row's flag, without the batch dimension (``[]``)."""
    description: str
    """What a controller does with it."""


@dataclass
class ParityRecord:
    """What the export's parity check compared and found.

    Continuous actions agree within ``atol + rtol·|a|``. Discrete actions (indices, the
    arg-max of the policy's scores) are equal, or at a tie: the graph chose another action
    whose probability under the trained model equals the best within ``atol + rtol·p``;
    ``max_abs_diff`` is then the largest such probability gap.
    """

    observations: int
    """Observations recorded from rollouts of the trained model."""
    boundary_cases: int
    """Extra observations at and beyond the normaliser's clip range and the space bounds."""
    max_abs_diff: float
    """Largest |onnxruntime action − torch/SB3 action| over all of them."""
    worst_ratio: float
    """Largest |Δa| / (atol + rtol·|a|); the check passes when this is <= 1."""
    atol: float = PARITY_ATOL
    """Absolute tolerance."""
    rtol: float = PARITY_RTOL
    """Relative tolerance."""
    argmax_ties: int = 0
    """Discrete actions: observations decided differently between two equally likely actions."""


@dataclass
class BundleManifest:
    """``manifest.json`` of a controller bundle (schema ``robocell-bundle/1``)."""

    schema_version: Literal["robocell-bundle/1"]
    """Manifest schema version."""
    robocell_version: str
    """robocell version that wrote the bundle."""
    env_id: str
    """Gymnasium id of the cell, e.g. ``robocell/WeldSeam-v1``."""
    env_version: int | None
    """The id's version number (``0`` for ``-v0``)."""
    env_kwargs: dict[str, Any]
    """Keyword arguments the cell was trained with (``gymnasium.make(env_id, **env_kwargs)``)."""
    control_period_s: float | None
    """Seconds between two actions (None when the env does not say)."""
    joint_names: list[str]
    """Robot joints, in the order joint-indexed fields use them (empty if none)."""
    observation: list[ObsInput]
    """The ONNX inputs in order."""
    action: ActionOutput
    """The ONNX output."""
    onnx_file: Literal["policy.onnx"]
    """The graph's file name inside the bundle."""
    onnx_opset: int
    """ONNX default-domain opset version."""
    onnx_ir_version: int
    """ONNX IR version."""
    onnx_sha256: str
    """sha256 (hex) of ``policy.onnx``."""
    algo: str
    """Training algorithm (``ppo``, ``sac``, ``td3``, ``tqc``)."""
    run_id: str
    """Name of the training run directory."""
    config_digest: str
    """sha256 of the canonical JSON of the run's resolved config."""
    checkpoint: str
    """Which checkpoint was exported (``best/model.zip``, ``checkpoints/step_….zip``)."""
    normalization_in_graph: bool
    """Whether observation normalisation (running mean/std, clipping) is inside the graph."""
    parity: ParityRecord
    """The export's parity check."""
    fault: FaultOutput
    """The second ONNX output (the input guard's verdict per row)."""
    batch: str
    """What the leading dimension of every input and output is."""

    def validate(self) -> None:
        """Consistency checks a schema type cannot express."""
        for name in ("onnx_sha256", "config_digest"):
            if not _SHA256.match(getattr(self, name)):
                raise SchemaError(name, "must be 64 lowercase hex digits")
        if self.onnx_opset < MIN_OPSET:
            raise SchemaError("onnx_opset", f"must be >= {MIN_OPSET}, got {self.onnx_opset}")
        if self.control_period_s is not None and not self.control_period_s > 0:
            raise SchemaError("control_period_s", "must be > 0")
        if not self.observation:
            raise SchemaError("observation", "needs at least one input")
        names = [item.name for item in self.observation]
        if len(set(names)) != len(names) or self.action.name in names:
            raise SchemaError("observation", "input and output names must be unique")
        for i, item in enumerate(self.observation):
            _check_input(item, f"observation[{i}]")
        _check_output(self.action)


def _size(shape: list[int]) -> int:
    size = 1
    for dim in shape:
        size *= dim
    return size


def _check_input(item: ObsInput, where: str) -> None:
    if not item.shape or any(dim < 1 for dim in item.shape):
        raise SchemaError(f"{where}.shape", f"must be positive dimensions, got {item.shape}")
    if item.layout == "vector":
        if len(item.fields) != _size(item.shape):
            raise SchemaError(f"{where}.fields", f"needs {_size(item.shape)} entries")
    elif len(item.shape) != 3 or item.dtype != "uint8" or item.fields:
        raise SchemaError(where, "an image input is uint8 with 3 dimensions and no fields")
    for i, entry in enumerate(item.fields):
        if entry.low is not None and entry.high is not None and entry.low > entry.high:
            raise SchemaError(f"{where}.fields[{i}]", "low must be <= high")
    expected = "obs" if item.key is None else f"obs.{item.key}"
    if item.name != expected:
        raise SchemaError(f"{where}.name", f"must be {expected!r}, got {item.name!r}")


def _check_output(item: ActionOutput) -> None:
    if any(dim < 1 for dim in item.shape) or len(item.fields) != _size(item.shape):
        raise SchemaError("action", f"shape {item.shape} needs one field per element")
    if item.dtype != ("float32" if item.kind == "box" else "int64"):
        raise SchemaError("action.dtype", f"{item.kind} actions are not {item.dtype}")
    for i, entry in enumerate(item.fields):
        if entry.low is not None and entry.high is not None and entry.low > entry.high:
            raise SchemaError(f"action.fields[{i}]", "low must be <= high")
    _check_safe_action(item)
    if item.grid is not None:
        high = item.fields[0].high if item.kind == "discrete" else None
        if high is None or high + 1 != item.grid.size:
            raise SchemaError("action.grid", "needs a discrete action with one index per cell")


def _check_safe_action(item: ActionOutput) -> None:
    if item.safe_action is None:
        return
    if item.kind != "box" or len(item.safe_action) != len(item.fields):
        raise SchemaError("action.safe_action", "a box action's, one value per field")
    for i, (value, entry) in enumerate(zip(item.safe_action, item.fields, strict=True)):
        if (entry.low is not None and value < entry.low) or (
            entry.high is not None and value > entry.high
        ):
            raise SchemaError(f"action.safe_action[{i}]", "must lie within the field's bounds")


def parse_manifest(data: Any) -> BundleManifest:
    """Check a manifest mapping against the schema; raises SchemaError naming the field."""
    return parse(BundleManifest, data)


def manifest_dict(manifest: BundleManifest) -> dict[str, Any]:
    """The manifest as plain JSON data."""
    return to_dict(manifest)


def metadata_props(manifest: dict[str, Any]) -> dict[str, str]:
    """The ONNX ``metadata_props`` that mirror a manifest: each field as canonical JSON."""
    return {
        key: canonical_json(value).decode()
        for key, value in manifest.items()
        if key not in NOT_IN_METADATA
    }
