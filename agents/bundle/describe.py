"""What a bundle's manifest says about its cell, asked from the env itself.

Field names and units come from the env: a cell may expose ``observation_fields`` and
``action_fields`` (lists of ``{"name", "unit", "doc"}`` dicts; for Dict observations a mapping
from key to such a list) on the env or its task, ``joint_names``, and ``control_period_s``.
Where a cell says nothing, the manifest uses generic names (``obs[i]``, ``action[i]``) with an
empty unit and marks the input ``generic_fields``; the export prints a note saying so.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from robocell import __version__
from robocell.agents.bundle.manifest import BATCH_DESCRIPTION, FAULT_DESCRIPTION, SCHEMA_VERSION
from robocell.envs.obs_ranges import observation_ranges
from robocell.errors import RobocellError


def observation_inputs(env: gym.Env) -> list[dict[str, Any]]:
    """The manifest's ``observation`` entries: one per Box, or one per Dict key in order.

    Vector fields carry the cell's measured ranges (:mod:`robocell.envs.obs_ranges`) as
    ``low``/``high``; a field without a measurement has none.
    """
    space = env.observation_space
    described = _attribute(env, "observation_fields")
    if isinstance(space, spaces.Box):
        entries = [_input(None, space, described)]
    elif isinstance(space, spaces.Dict):
        described = described if isinstance(described, dict) else {}
        entries = [_input(key, sub, described.get(key)) for key, sub in space.spaces.items()]
    else:
        raise RobocellError(f"cannot export {type(space).__name__} observations (Box or Dict only)")
    ranges = observation_ranges(env.spec.id) if env.spec else {}
    for entry in entries:
        measured = ranges.get(entry["name"], {})
        for item in entry["fields"]:
            item["low"], item["high"] = measured.get(item["name"], (None, None))
    return entries


def _input(key: str | None, space: spaces.Space, described: Any) -> dict[str, Any]:
    where = "observation" if key is None else f"observation[{key!r}]"
    if not isinstance(space, spaces.Box) or space.dtype not in (np.float32, np.uint8):
        raise RobocellError(f"cannot export {where}: {space} (float32 or uint8 Box only)")
    shape = [int(dim) for dim in space.shape]
    entry: dict[str, Any] = {
        "name": "obs" if key is None else f"obs.{key}",
        "key": key,
        "dtype": str(space.dtype),
        "shape": shape,
    }
    if space.dtype == np.uint8 and len(shape) == 3:
        # SB3's rule: the channel axis is the smallest one, first (CHW) or last (HWC).
        layout = "CHW" if int(np.argmin(shape)) == 0 else "HWC"
        return {**entry, "layout": layout, "fields": [], "generic_fields": False}
    fields, generic = _fields(described, int(np.prod(shape)), "obs", where)
    return {**entry, "layout": "vector", "fields": fields, "generic_fields": generic}


def action_output(env: gym.Env) -> dict[str, Any]:
    """The manifest's ``action`` entry: kind, dtype, shape, fields with bounds, and grid.

    The bounds are the action space's (what the graph clips or squashes to); a cell's own
    ``low``/``high`` are physical and follow from ``scale``. A Discrete action that picks a
    cell of an image-aligned grid carries the cell's own ``action_grid`` description
    (:class:`robocell.agents.bundle.manifest.ActionGrid`) as ``grid``.
    """
    space = env.action_space
    described = _attribute(env, "action_fields")
    if isinstance(space, spaces.Box):
        low, high = space.low.ravel(), space.high.ravel()
        kind, dtype, shape = "box", "float32", [int(dim) for dim in space.shape]
    elif isinstance(space, spaces.Discrete) and int(space.start) == 0:
        low, high = np.zeros(1), np.asarray([space.n - 1])
        kind, dtype, shape = "discrete", "int64", []
    elif isinstance(space, spaces.MultiDiscrete) and space.nvec.ndim == 1:
        low, high = np.zeros(len(space.nvec)), space.nvec - 1
        kind, dtype, shape = "multi_discrete", "int64", [len(space.nvec)]
    else:
        raise RobocellError(f"cannot export the action space {space}")
    fields, generic = _fields(described, len(low), "action", "action")
    for entry, lo, hi in zip(fields, low, high, strict=True):
        entry["low"] = float(lo) if np.isfinite(lo) else None
        entry["high"] = float(hi) if np.isfinite(hi) else None
    safe = _attribute(env, "safe_action") if kind == "box" else None
    return {
        "name": "action",
        "kind": kind,
        "dtype": dtype,
        "shape": shape,
        "fields": fields,
        "generic_fields": generic,
        "grid": _attribute(env, "action_grid") if kind == "discrete" else None,
        "safe_action": None if safe is None else [float(value) for value in safe],
        "safe_action_description": str(
            _attribute(env, "safe_action_description")
            or "none declared by the env: do not execute a faulted row's action"
        ),
    }


def _fields(described: Any, size: int, prefix: str, where: str) -> tuple[list[dict], bool]:
    if described is None:
        return [{"name": f"{prefix}[{i}]", "unit": ""} for i in range(size)], True
    if not isinstance(described, list | tuple) or len(described) != size:
        raise RobocellError(f"the env's description of {where} does not list {size} fields")
    fields = []
    for item in described:
        entry = {
            "name": str(item["name"]),
            "unit": str(item.get("unit", "")),
            "description": str(item.get("doc", item.get("description", ""))),
        }
        if prefix == "action":
            entry["scale"] = float(item.get("scale", 1.0))
        fields.append(entry)
    return fields, False


def joint_names(env: gym.Env) -> list[str]:
    """Names of the robot's controlled joints (after a reset), or ``[]`` for robot-less envs."""
    names = _attribute(env, "joint_names")
    if names is not None:
        return [str(name) for name in names]
    unwrapped = env.unwrapped
    robot, sim = getattr(unwrapped, "robot", None), getattr(unwrapped, "sim", None)
    if robot is None or sim is None or not hasattr(robot, "joint_indices"):
        return []
    joints = sim.joints(robot.name)
    return [joints[index].name for index in robot.joint_indices]


def control_period_s(env: gym.Env) -> float | None:
    """Seconds between two actions: the cell's control period, or the env's ``dt``."""
    value = _attribute(env, "control_period_s")
    if value is None:
        value = getattr(env.unwrapped, "dt", None)
    return float(value) if value is not None else None


def cell_manifest(
    env: gym.Env,
    env_id: str,
    env_kwargs: dict[str, Any],
    provenance: dict[str, Any],
    parity: dict[str, Any],
) -> dict[str, Any]:
    """Every manifest field except the ONNX ones (which ``write_bundle`` adds).

    ``provenance`` holds ``algo``, ``run_id``, ``config_digest``, ``checkpoint`` and
    ``normalization_in_graph``; ``parity`` the export's parity figures.
    """
    return {
        "schema_version": SCHEMA_VERSION,
        "robocell_version": __version__,
        "env_id": env_id,
        "env_version": env.spec.version if env.spec else None,
        "env_kwargs": env_kwargs,
        "control_period_s": control_period_s(env),
        "joint_names": joint_names(env),
        "observation": observation_inputs(env),
        "action": action_output(env),
        **provenance,
        "parity": parity,
        **fault_fields(),
    }


def fault_fields() -> dict[str, Any]:
    """The manifest's ``fault`` output and ``batch`` description (the same for every cell)."""
    fault = {"name": "fault", "dtype": "bool", "shape": [], "description": FAULT_DESCRIPTION}
    return {"fault": fault, "batch": BATCH_DESCRIPTION}


def _attribute(env: gym.Env, name: str) -> Any:
    # Cells put descriptions on the env or on its task (see robocell.envs.core).
    unwrapped = env.unwrapped
    for owner in (unwrapped, getattr(unwrapped, "task", None)):
        value = getattr(owner, name, None) if owner is not None else None
        if value is not None:
            return value
    return None


def generic_notes(inputs: list[dict[str, Any]], action: dict[str, Any]) -> list[str]:
    """One note per input or output whose field names the env did not provide."""
    notes = [
        f"{entry['name']}: the env does not describe its fields; named obs[i], no units"
        for entry in inputs
        if entry["generic_fields"]
    ]
    if action["generic_fields"]:
        notes.append("action: the env does not describe its fields; named action[i], no units")
    return notes
