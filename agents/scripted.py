"""Scripted controllers as controller bundles: the reference a trained policy is measured by.

The welding cell's :class:`~robocell.envs.weld.controller.ScriptedWelder` is a stateless
feedback law on the observation, so it can be written op for op as an ONNX graph (Gather, Sub,
Abs, Mul, Clip, comparisons, And, Where, Concat). ``robocell export-baseline
robocell/WeldSeam-v1 -o B`` writes it as a bundle that certification and release treat like
any trained policy: a buyer can certify the reference controller, a supplier can see the bar.
No torch is involved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from robocell.agents.bundle.describe import cell_manifest
from robocell.agents.bundle.write import write_bundle
from robocell.envs.make import make_cell
from robocell.envs.weld.controller import ScriptedWelder
from robocell.envs.weld.task import OBSERVATION_FIELDS
from robocell.errors import RobocellError
from robocell.util import canonical_json, sha256_bytes

OPSET = 17
IR_VERSION = 9


def _column(name: str, index: int, nodes: list, inits: list) -> str:
    inits.append(numpy_helper.from_array(np.array([index], dtype=np.int64), f"{name}_index"))
    nodes.append(helper.make_node("Gather", ["obs", f"{name}_index"], [name], axis=1))
    return name


def _constants(inits: list) -> None:
    constants = {
        "standoff_mm": ScriptedWelder.standoff_mm,
        "gain": 0.4,
        "neg_gain": -0.4,
        "lo": -1.0,
        "hi": 1.0,
        "band": 1.5,
        "half": 0.5,
        "zero": 0.0,
        "travel_on": ScriptedWelder.travel_command,
        "arc_speed": 6.5,
    }
    for name, value in constants.items():
        inits.append(numpy_helper.from_array(np.array(value, dtype=np.float32), name))


def scripted_weld_graph() -> onnx.ModelProto:
    """The ScriptedWelder law as ONNX, float32 op for op as numpy computes it."""
    i = {field["name"]: k for k, field in enumerate(OBSERVATION_FIELDS)}
    nodes: list = []
    inits: list = []
    standoff = _column("standoff", i["sensor_standoff"], nodes, inits)
    lateral_in = _column("lateral_in", i["sensor_lateral"], nodes, inits)
    valid_in = _column("valid_in", i["sensor_valid"], nodes, inits)
    remaining = _column("remaining", i["remaining"], nodes, inits)
    travel_speed = _column("travel_speed", i["velocity_travel"], nodes, inits)
    _constants(inits)
    nodes += [
        helper.make_node("Sub", [standoff, "standoff_mm"], ["error_z"]),
        helper.make_node("Abs", ["error_z"], ["abs_error_z"]),
        helper.make_node("Less", ["abs_error_z", "band"], ["settled"]),
        helper.make_node("Where", ["settled", "travel_on", "zero"], ["travel"]),
        helper.make_node("Mul", ["gain", lateral_in], ["lateral_raw"]),
        helper.make_node("Clip", ["lateral_raw", "lo", "hi"], ["lateral"]),
        helper.make_node("Mul", ["neg_gain", "error_z"], ["up_raw"]),
        helper.make_node("Clip", ["up_raw", "lo", "hi"], ["up"]),
        helper.make_node("Greater", [valid_in, "half"], ["valid"]),
        helper.make_node("Greater", [remaining, "zero"], ["before_end"]),
        helper.make_node("GreaterOrEqual", [travel_speed, "arc_speed"], ["moving"]),
        helper.make_node("And", ["settled", "moving"], ["settled_moving"]),
        helper.make_node("And", ["settled_moving", "valid"], ["settled_valid"]),
        helper.make_node("And", ["settled_valid", "before_end"], ["arc_ok"]),
        helper.make_node("Where", ["arc_ok", "hi", "lo"], ["arc"]),
        helper.make_node("Concat", ["travel", "lateral", "up", "arc"], ["action"], axis=1),
    ]
    return vector_policy_model(nodes, inits, "scripted_welder", len(OBSERVATION_FIELDS), 4)


def vector_policy_model(
    nodes: list, inits: list, name: str, obs_dim: int, action_dim: int
) -> onnx.ModelProto:
    """A checked opset-17 model from ``obs`` [batch, obs_dim] to ``action`` [batch, action_dim]."""
    obs = helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", obs_dim])
    action = helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", action_dim])
    graph = helper.make_graph(nodes, name, [obs], [action], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


SCRIPTED_GRAPHS = {"robocell/WeldSeam-v1": scripted_weld_graph}


def write_model_bundle(
    bundle_dir: str | Path,
    model: onnx.ModelProto,
    env_id: str,
    algo: str,
    overwrite: bool = False,
    env_kwargs: dict[str, Any] | None = None,
) -> Path:
    """Write a hand-built policy graph for ``env_id`` as a bundle (manifest from the cell)."""
    env_kwargs = dict(env_kwargs or {})
    env = make_cell(env_id, env_kwargs)
    try:
        env.reset(seed=0)  # joint names are known once the robot is loaded
        provenance = {
            "algo": algo,
            "run_id": f"{algo}-{env_id.split('/')[-1]}",
            "config_digest": sha256_bytes(canonical_json({"algo": algo, "env_id": env_id})),
            "checkpoint": "none",
            "normalization_in_graph": False,
        }
        parity = {"observations": 0, "boundary_cases": 0, "max_abs_diff": 0.0, "worst_ratio": 0.0}
        manifest = cell_manifest(env, env_id, env_kwargs, provenance, parity)
    finally:
        env.close()
    write_bundle(bundle_dir, model, manifest, overwrite=overwrite)
    return Path(bundle_dir)


def export_scripted(env_id: str, bundle_dir: str | Path, overwrite: bool = False) -> Path:
    """Write the scripted controller of ``env_id`` as a bundle in ``bundle_dir``."""
    try:
        graph = SCRIPTED_GRAPHS[env_id]
    except KeyError:
        known = ", ".join(SCRIPTED_GRAPHS)
        raise RobocellError(
            f"no scripted controller of {env_id!r} can be written as a bundle (only: {known}); "
            "the others keep state between steps"
        ) from None
    return write_model_bundle(bundle_dir, graph(), env_id, "scripted", overwrite)
