"""Helpers of the certification tests and benchmark: weld bundles that need no training.

``write_scripted_weld_bundle`` writes the weld cell's :class:`ScriptedWelder` as a bundle
(:mod:`robocell.agents.scripted`); ``write_random_weld_bundle`` writes an untrained policy (a
random linear map squashed by tanh), a real bundle that
:func:`robocell.agents.bundle.policy.load_bundle` accepts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from robocell.agents.scripted import export_scripted, vector_policy_model, write_model_bundle
from robocell.envs.weld.task import OBSERVATION_FIELDS

WELD_ID = "robocell/WeldSeam-v0"
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
