"""Helpers of the certification tests and benchmark: hand-built weld bundles.

``write_scripted_weld_bundle`` writes the weld cell's :class:`ScriptedWelder` feedback law as
an ONNX graph (Gather, Sub, Mul, Clip, Abs, comparisons, And, Where, Concat) with a manifest, a
real bundle that :func:`robocell.agents.export.load_bundle` accepts; ``write_random_weld_bundle``
writes an untrained policy (a random linear map squashed by tanh).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import robocell
from robocell.agents.export import write_bundle
from robocell.envs.weld import OBSERVATION_FIELDS, ScriptedWelder, WeldSeamEnv
from robocell.util import sha256_bytes

WELD_ID = "robocell/WeldSeam-v0"
OBS_DIM = len(OBSERVATION_FIELDS)
OPSET = 17


def _column(name: str, index: int, nodes: list, inits: list) -> str:
    inits.append(numpy_helper.from_array(np.array([index], dtype=np.int64), f"{name}_index"))
    nodes.append(helper.make_node("Gather", ["obs", f"{name}_index"], [name], axis=1))
    return name


def _const(name: str, value: float, inits: list) -> str:
    inits.append(numpy_helper.from_array(np.array(value, dtype=np.float32), name))
    return name


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
    constants = {
        "twelve": ScriptedWelder.standoff_mm,
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
        _const(name, value, inits)
    nodes += [
        helper.make_node("Sub", [standoff, "twelve"], ["error_z"]),
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
    return _model(nodes, inits, "scripted_welder")


def random_weld_graph(seed: int = 0) -> onnx.ModelProto:
    """An untrained policy: tanh(obs · W) with W ~ N(0, 0.1²), seeded."""
    weights = np.random.default_rng(seed).normal(0.0, 0.1, (OBS_DIM, 4)).astype(np.float32)
    inits = [numpy_helper.from_array(weights, "weights")]
    nodes = [
        helper.make_node("MatMul", ["obs", "weights"], ["pre"]),
        helper.make_node("Tanh", ["pre"], ["action"]),
    ]
    return _model(nodes, inits, "random_linear")


def _model(nodes: list, inits: list, name: str) -> onnx.ModelProto:
    obs = helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", OBS_DIM])
    action = helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", 4])
    graph = helper.make_graph(nodes, name, [obs], [action], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def weld_manifest(algo: str, env_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A weld bundle manifest without the ONNX fields (``write_bundle`` adds them)."""
    action_fields = [
        {k: v for k, v in field.items() if k != "scale"} for field in WeldSeamEnv.action_fields
    ]
    observation = {
        "name": "obs",
        "key": None,
        "dtype": "float32",
        "shape": [OBS_DIM],
        "layout": "vector",
        "fields": [
            {"name": f["name"], "unit": f["unit"], "description": f["doc"]}
            for f in OBSERVATION_FIELDS
        ],
    }
    return {
        "schema_version": "robocell-bundle/1",
        "robocell_version": robocell.__version__,
        "env_id": WELD_ID,
        "env_version": 0,
        "env_kwargs": env_kwargs or {},
        "control_period_s": 0.1,
        "joint_names": [],
        "observation": [observation],
        "action": {
            "name": "action",
            "kind": "box",
            "dtype": "float32",
            "shape": [4],
            "fields": action_fields,
        },
        "algo": algo,
        "run_id": f"handwritten-{algo}",
        "config_digest": sha256_bytes(algo.encode()),
        "checkpoint": "none",
        "normalization_in_graph": False,
        "parity": {
            "observations": 0,
            "boundary_cases": 0,
            "max_abs_diff": 0.0,
            "worst_ratio": 0.0,
        },
    }


def write_scripted_weld_bundle(bundle_dir: str | Path) -> Path:
    """Write the ScriptedWelder bundle to ``bundle_dir``."""
    write_bundle(bundle_dir, scripted_weld_graph(), weld_manifest("scripted"))
    return Path(bundle_dir)


def write_random_weld_bundle(bundle_dir: str | Path, seed: int = 0) -> Path:
    """Write the untrained random-linear bundle to ``bundle_dir``."""
    write_bundle(bundle_dir, random_weld_graph(seed), weld_manifest("random"))
    return Path(bundle_dir)


def small_weld_spec(episodes: int, p0: float = 0.5, env_id: str = WELD_ID) -> dict[str, Any]:
    """A short weld benchmark spec (as plain data) for tests: two criteria, two figures."""
    return {
        "name": "weld-test",
        "env_id": env_id,
        "episodes": episodes,
        "alpha": 0.05,
        "criteria": [
            {"name": "success", "metric": "success", "op": ">=", "value": 1, "p0": p0},
            {
                "name": "no_fault",
                "metric": "fault",
                "op": "==",
                "value": 0,
                "if_missing": 0,
                "p0": p0,
            },
        ],
        "figures": [
            {"name": "energy_per_part_j", "metric": "energy_j", "limit": 70000.0, "unit": "J"},
            {
                "name": "lateral_error_mm",
                "metric": "mean_lateral_error_mm",
                "statistic": "iqm",
                "unit": "mm",
            },
        ],
        "bootstrap": {"seed": 0, "resamples": 999, "confidence": 0.95},
    }
