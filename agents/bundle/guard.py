"""The input guard every bundle's graph carries: a faulted row gets the cell's safe action.

:func:`guard_model` wraps a policy graph (raw observations in, ``action`` out) so that, row
by row of the batch:

1. a row holding a non-finite value (NaN, ±inf) in any float input is *faulted*: its
   non-finite values are replaced by 0 before the policy sees them (so nothing non-finite
   reaches the network), its ``action`` is the cell's safe action (``action.safe_action``
   in the manifest; for a cell without one, index 0, which a controller must not execute),
   and the second output ``fault`` (bool, one per row) is true;
2. finite values outside the manifest's observation ranges (``low``/``high`` of each vector
   field) are clipped to them before the policy's normalisation; that is not a fault.

Every op is element-wise or acts within a row, so a bad row changes no other row. The guard
uses default-domain ops that exist at opset 17 and later, and no reduction whose ``axes``
moved from an attribute to an input between opsets. Torch-free: it edits the ONNX graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from robocell.errors import RobocellError

ACTION_OUTPUT = "action"
FAULT_OUTPUT = "fault"
_PREFIX = "guard/"


def is_guarded(model: onnx.ModelProto) -> bool:
    """True when the graph already has the ``fault`` output."""
    return any(output.name == FAULT_OUTPUT for output in model.graph.output)


def safe_action_array(action: dict[str, Any]) -> np.ndarray:
    """A faulted row's action, shaped like one row of ``action`` (a manifest entry)."""
    shape = tuple(action["shape"])
    safe = action.get("safe_action")
    if action["kind"] != "box":
        # A discrete pick cannot be "neutral": the row's fault flag says not to execute it.
        return np.zeros(shape, dtype=np.int64)
    if safe is None:  # no safe action: an in-bounds placeholder that must not be executed
        low = [-np.inf if f["low"] is None else f["low"] for f in action["fields"]]
        high = [np.inf if f["high"] is None else f["high"] for f in action["fields"]]
        safe = np.clip(np.zeros(len(low)), low, high)
    return np.asarray(safe, dtype=np.float32).reshape(shape)


def observation_bounds(entry: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-element (low, high) of a vector input (±inf where a field has no range)."""
    if entry["layout"] != "vector":
        return None
    low = [-np.inf if f.get("low") is None else f["low"] for f in entry["fields"]]
    high = [np.inf if f.get("high") is None else f["high"] for f in entry["fields"]]
    shape = tuple(entry["shape"])
    return (
        np.asarray(low, dtype=np.float32).reshape(shape),
        np.asarray(high, dtype=np.float32).reshape(shape),
    )


def guard_model(model: onnx.ModelProto, manifest: dict[str, Any]) -> onnx.ModelProto:
    """A copy of ``model`` with the input guard; ``manifest`` gives ranges and safe action."""
    if is_guarded(model):
        raise RobocellError("the graph already has a fault output")
    outputs = [output.name for output in model.graph.output]
    if outputs != [ACTION_OUTPUT]:
        raise RobocellError(f"the guard wraps a graph with one output 'action', not {outputs}")
    guarded = onnx.ModelProto()
    guarded.CopyFrom(model)
    graph = guarded.graph
    inputs = {item["name"]: item for item in manifest["observation"]}
    _rename_uses(
        graph,
        {name: _PREFIX + name for name in inputs} | {ACTION_OUTPUT: _PREFIX + "unguarded_action"},
    )
    nodes: list[onnx.NodeProto] = []
    row_faults = []
    checked = [name for name, entry in inputs.items() if entry["dtype"] == "float32"]
    for name, entry in inputs.items():
        if name in checked:
            row_faults.append(_check_input(graph, nodes, name, entry))
        else:  # images are uint8: always finite, used as they are
            nodes.append(helper.make_node("Identity", [name], [_PREFIX + name]))
    if not row_faults:  # a graph of images alone: the flag is false on every row
        row_faults.append(_no_fault(graph, nodes, next(iter(inputs))))
    fault = row_faults[0]
    for other in row_faults[1:]:
        fault = _node(nodes, "Or", [fault, other], f"{fault}|{other}")
    nodes.append(helper.make_node("Identity", [fault], [FAULT_OUTPUT]))
    after: list[onnx.NodeProto] = []
    _select_safe_action(graph, after, manifest["action"])
    # The guard's checks run before the policy's nodes, the action selection after them.
    policy_nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend([*nodes, *policy_nodes, *after])
    _set_outputs(graph, manifest["action"])
    onnx.checker.check_model(guarded)
    return guarded


def _rename_uses(graph: onnx.GraphProto, names: dict[str, str]) -> None:
    # The policy reads the cleaned inputs and writes the unguarded action.
    for node in graph.node:
        node.input[:] = [names.get(value, value) for value in node.input]
        node.output[:] = [names.get(value, value) for value in node.output]


def _node(nodes: list, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
    nodes.append(helper.make_node(op, inputs, [_PREFIX + output], **attrs))
    return _PREFIX + output


def _const(graph: onnx.GraphProto, name: str, value: np.ndarray) -> str:
    graph.initializer.append(numpy_helper.from_array(value, _PREFIX + name))
    return _PREFIX + name


def _check_input(graph: onnx.GraphProto, nodes: list, name: str, entry: dict[str, Any]) -> str:
    """Clean one float input into ``guard/<name>``; returns its per-row fault flag (bool)."""
    nan = _node(nodes, "IsNaN", [name], f"{name}.nan")
    inf = _node(nodes, "IsInf", [name], f"{name}.inf")
    bad = _node(nodes, "Or", [nan, inf], f"{name}.bad")
    zero = _const(graph, f"{name}.zero", np.zeros((), np.float32))
    finite = _node(nodes, "Where", [bad, zero, name], f"{name}.finite")
    bounds = observation_bounds(entry)
    if bounds is not None:
        high = _const(graph, f"{name}.high", bounds[1])
        low = _const(graph, f"{name}.low", bounds[0])
        below = _node(nodes, "Min", [finite, high], f"{name}.below_high")
        nodes.append(helper.make_node("Max", [below, low], [_PREFIX + name]))
    else:
        nodes.append(helper.make_node("Identity", [finite], [_PREFIX + name]))
    return _any_per_row(graph, nodes, bad, name, int(np.prod(entry["shape"])))


def _any_per_row(graph: onnx.GraphProto, nodes: list, flags: str, name: str, size: int) -> str:
    # Count the row's true flags with a matrix product: no opset-dependent reduction.
    as_float = _node(nodes, "Cast", [flags], f"{name}.bad_f", to=TensorProto.FLOAT)
    flat = _node(nodes, "Flatten", [as_float], f"{name}.bad_flat", axis=1)
    ones = _const(graph, f"{name}.ones", np.ones((size, 1), np.float32))
    count = _node(nodes, "MatMul", [flat, ones], f"{name}.bad_count")
    row = _const(graph, f"{name}.row_shape", np.asarray([-1], np.int64))
    per_row = _node(nodes, "Reshape", [count, row], f"{name}.bad_rows")
    zero = _const(graph, f"{name}.count_zero", np.zeros((), np.float32))
    return _node(nodes, "Greater", [per_row, zero], f"{name}.fault")


def _no_fault(graph: onnx.GraphProto, nodes: list, name: str) -> str:
    as_float = _node(nodes, "Cast", [name], f"{name}.as_float", to=TensorProto.FLOAT)
    bad = _node(nodes, "IsNaN", [as_float], f"{name}.nan")
    size = int(np.prod([d.dim_value for d in _input(graph, name).type.tensor_type.shape.dim[1:]]))
    return _any_per_row(graph, nodes, bad, name, size)


def _input(graph: onnx.GraphProto, name: str) -> onnx.ValueInfoProto:
    return next(value for value in graph.input if value.name == name)


def _select_safe_action(graph: onnx.GraphProto, nodes: list, action: dict[str, Any]) -> None:
    safe = _const(graph, "safe_action", safe_action_array(action))
    # fault is [batch]; reshape to [batch, 1, …] so it broadcasts over one action row.
    shape = np.asarray([-1] + [1] * len(action["shape"]), np.int64)
    fault_shape = _const(graph, "fault_shape", shape)
    fault = _node(nodes, "Reshape", [FAULT_OUTPUT, fault_shape], "fault_rows")
    nodes.append(
        helper.make_node("Where", [fault, safe, _PREFIX + "unguarded_action"], [ACTION_OUTPUT])
    )


def _set_outputs(graph: onnx.GraphProto, action: dict[str, Any]) -> None:
    elem = TensorProto.FLOAT if action["dtype"] == "float32" else TensorProto.INT64
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info(ACTION_OUTPUT, elem, ["batch", *action["shape"]]),
            helper.make_tensor_value_info(FAULT_OUTPUT, TensorProto.BOOL, ["batch"]),
        ]
    )


def clip_observation(obs: Any, inputs: list[dict[str, Any]]) -> tuple[Any, bool]:
    """``obs`` (one or a batch) clipped to the manifest's ranges as the graph does it.

    Returns the clipped observation and whether any finite value was outside its range
    (non-finite values are left as they are: the graph faults those rows).
    """
    clipped_any = False
    out = dict(obs) if inputs[0]["key"] is not None else obs
    for entry in inputs:
        bounds = observation_bounds(entry)
        if bounds is None:
            continue
        value = np.asarray(obs if entry["key"] is None else obs[entry["key"]], np.float32)
        with np.errstate(invalid="ignore"):
            outside = np.isfinite(value) & ((value < bounds[0]) | (value > bounds[1]))
        if outside.any():
            clipped_any = True
            value = np.where(outside, np.clip(value, *bounds), value)
        if entry["key"] is None:
            out = value
        else:
            out[entry["key"]] = value
    return out, clipped_any
