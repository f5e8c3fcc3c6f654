"""Helpers of the certification tests and benchmark: bundles that need no training.

``write_scripted_weld_bundle`` writes the weld cell's :class:`ScriptedWelder` as a bundle
(:mod:`robocell.agents.scripted`); ``write_random_weld_bundle`` writes an untrained policy (a
random linear map squashed by tanh), a real bundle that
:func:`robocell.agents.bundle.policy.load_bundle` accepts. The hostile ones: a scripted welder
whose outputs are scaled far past their bounds, one whose manifest claims wider bounds than
the cell's, and a vision policy that outputs NaN. The specs are small benchmark specs;
``read_statement`` and ``resign`` open and re-sign certificates as a dishonest key holder would.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from robocell.agents.bundle import write_bundle
from robocell.agents.scripted import (
    IR_VERSION,
    OPSET,
    export_scripted,
    scripted_weld_graph,
    vector_policy_model,
    write_model_bundle,
)
from robocell.envs.weld.task import OBSERVATION_FIELDS
from robocell.eval.certify import certificate_bytes, certify
from robocell.eval.dsse import sign_envelope
from robocell.eval.keys import load_private_key
from robocell.eval.seeds import commitment
from robocell.eval.spec import parse_spec

WELD_ID = "robocell/WeldSeam-v1"
VISION_ID = "robocell/VisionSort-v1"
OBS_DIM = len(OBSERVATION_FIELDS)


def random_weld_graph(seed: int = 0) -> onnx.ModelProto:
    """An untrained policy: tanh(obs · W) with W ~ N(0, 0.1²), seeded."""
    weights = np.random.default_rng(seed).normal(0.0, 0.1, (OBS_DIM, 4)).astype(np.float32)
    inits = [numpy_helper.from_array(weights, "weights")]
    nodes = [
        helper.make_node("MatMul", ["obs", "weights"], ["pre"]),
        helper.make_node("Tanh", ["pre"], ["action"]),
    ]
    return vector_policy_model(nodes, inits, "random_linear", OBS_DIM, 4)


def write_scripted_weld_bundle(bundle_dir: str | Path) -> Path:
    """Write the ScriptedWelder bundle to ``bundle_dir``."""
    return export_scripted(WELD_ID, bundle_dir)


def write_random_weld_bundle(bundle_dir: str | Path, seed: int = 0) -> Path:
    """Write the untrained random-linear bundle to ``bundle_dir``."""
    return write_model_bundle(bundle_dir, random_weld_graph(seed), WELD_ID, "random")


def scaled_weld_graph(factors: list[float]) -> onnx.ModelProto:
    """The scripted welder with each action component multiplied by a factor afterwards."""
    model = scripted_weld_graph()
    graph = model.graph
    concat = next(node for node in graph.node if node.op_type == "Concat")
    concat.output[0] = "unscaled"
    factor = np.asarray(factors, dtype=np.float32)
    graph.initializer.append(numpy_helper.from_array(factor, "factors"))
    graph.node.append(helper.make_node("Mul", ["unscaled", "factors"], ["action"]))
    onnx.checker.check_model(model)
    return model


def write_weld_bundle(
    bundle_dir: Path, model: onnx.ModelProto, edit: Callable[[dict], None] | None = None
) -> Path:
    """A weld bundle of ``model``; ``edit`` changes the manifest (re-sealed like an export)."""
    write_model_bundle(bundle_dir, model, WELD_ID, "test")
    if edit is not None:
        manifest = json.loads((bundle_dir / "manifest.json").read_text())
        edit(manifest)
        write_bundle(bundle_dir, model, manifest, overwrite=True)
    return bundle_dir


def write_nan_vision_bundle(bundle_dir: Path) -> Path:
    """A vision-cell bundle whose every action is NaN (state · W + NaN; the image is unused).

    It acts in the cell's continuous mode (a float pick point): a grid index cannot be NaN.
    """
    weights = np.zeros((2, 3), dtype=np.float32)
    inits = [
        numpy_helper.from_array(weights, "weights"),
        numpy_helper.from_array(np.full(3, np.nan, dtype=np.float32), "nan"),
    ]
    nodes = [
        helper.make_node("MatMul", ["obs.state", "weights"], ["pre"]),
        helper.make_node("Add", ["pre", "nan"], ["action"]),
    ]
    inputs = [
        helper.make_tensor_value_info("obs.image", TensorProto.UINT8, ["batch", 3, 84, 84]),
        helper.make_tensor_value_info("obs.state", TensorProto.FLOAT, ["batch", 2]),
    ]
    action = helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_graph(nodes, "nan_policy", inputs, [action], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return write_model_bundle(
        bundle_dir, model, VISION_ID, "nan", env_kwargs={"action_mode": "continuous"}
    )


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


def conditioned_weld_spec(episodes: int, p0: float = 0.5) -> dict[str, Any]:
    """:func:`small_weld_spec` with three operating conditions for the robustness table.

    The ``seam_length`` condition's one bucket holds every seam (120–250 mm) and requires
    ``success`` with ``p0`` of it: a bucket criterion that the scripted welder passes, and the
    third of m = 3 tests.
    """
    data = small_weld_spec(episodes, p0)
    data["conditions"] = [
        {
            "name": "seam_shape",
            "metric": "seam_shape_index",
            "description": "0 straight, 1 arc, 2 S-curve",
            "buckets": [
                {"name": "straight", "equals": 0},
                {"name": "arc", "equals": 1},
                {"name": "s_curve", "equals": 2},
            ],
        },
        {
            "name": "calibration_error",
            "metric": "calibration_error_mm",
            "unit": "mm",
            "buckets": [
                {"name": "under 2 mm", "high": 2.0},
                {"name": "2 mm and over", "low": 2.0},
            ],
        },
        {
            "name": "seam_length",
            "metric": "seam_length_mm",
            "unit": "mm",
            "buckets": [
                {"name": "any", "low": 100.0, "criteria": [{"criterion": "success", "p0": p0}]}
            ],
        },
    ]
    return data


def certify_quietly(
    bundle: Path, spec: dict[str, Any], master_seed: str, key: Path, out: Path, stills: int = 0
) -> Path:
    """Certify ``bundle`` on a spec given as plain data, without a progress bar; the cert dir."""
    result = certify(
        bundle,
        parse_spec(spec),
        master_seed,
        commitment(master_seed),
        load_private_key(key),
        out,
        progress=False,
        stills=stills,
    )
    return result.certificate_path.parent


def read_statement(cert: Path) -> dict[str, Any]:
    """The in-toto statement inside a certificate file (not verified)."""
    return json.loads(base64.b64decode(json.loads(cert.read_text())["payload"]))


def resign(cert: Path, key: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit the statement and sign it again (what a dishonest key holder can do)."""
    statement = read_statement(cert)
    edit(statement)
    cert.write_bytes(certificate_bytes(sign_envelope(statement, load_private_key(key))))
