"""Measure every cell's observation ranges and write ``envs/ranges/<Name>-v<N>.json``.

Each cell runs ``--scripted`` episodes with its scripted controller and ``--random`` episodes
with uniformly random actions (default settings, seeds from ``--first-seed``); every vector
field's minimum and maximum are widened by the margin of :mod:`robocell.envs.obs_ranges`.
Export reads the files into the manifest's observation ``low``/``high``.

    python scripts/measure_ranges.py [--cells robocell/PegInsert-v0 ...]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from robocell.agents.bundle.describe import observation_inputs
from robocell.envs import ENV_IDS
from robocell.envs.make import make_cell, make_controller
from robocell.envs.obs_ranges import RELATIVE_MARGIN, ranges_path, widen

# Seeds far from training (seed + env index), evaluation (0…, 2 000 000…) and export (900 000…).
FIRST_SEED = 7_000_000


def collect(env_id: str, scripted: int, random: int, first_seed: int) -> dict[str, np.ndarray]:
    """Every vector observation seen, per ONNX input name: an array (steps, elements)."""
    env = make_cell(env_id)
    seen: dict[str, list[np.ndarray]] = {}
    try:
        inputs = [entry for entry in observation_inputs(env) if entry["layout"] == "vector"]
        controller = make_controller(env_id, env.unwrapped)
        env.action_space.seed(first_seed)
        for episode in range(scripted + random):
            act = controller if episode < scripted else (lambda _obs: env.action_space.sample())
            obs, _ = env.reset(seed=first_seed + episode)
            if hasattr(act, "reset"):
                act.reset()
            while True:
                _record(obs, inputs, seen)
                obs, _, terminated, truncated, _ = env.step(act(obs))
                if terminated or truncated:
                    _record(obs, inputs, seen)
                    break
    finally:
        env.close()
    return {name: np.stack(rows) for name, rows in seen.items()}


def _record(obs: Any, inputs: list[dict[str, Any]], into: dict[str, list[np.ndarray]]) -> None:
    for entry in inputs:
        value = obs if entry["key"] is None else obs[entry["key"]]
        into.setdefault(entry["name"], []).append(np.asarray(value, np.float64).ravel())


def ranges_document(env_id: str, scripted: int, random: int, first_seed: int) -> dict[str, Any]:
    """The range file's content for one cell."""
    env = make_cell(env_id)
    try:
        inputs = {entry["name"]: entry for entry in observation_inputs(env)}
    finally:
        env.close()
    seen = collect(env_id, scripted, random, first_seed)
    ranges = {}
    for name, rows in seen.items():
        fields = [field["name"] for field in inputs[name]["fields"]]
        low, high = rows.min(axis=0), rows.max(axis=0)
        ranges[name] = {
            field: widen(float(lo), float(hi))
            for field, lo, hi in zip(fields, low, high, strict=True)
        }
    return {
        "env_id": env_id,
        "env_kwargs": {},
        "scripted_episodes": scripted,
        "random_episodes": random,
        "first_seed": first_seed,
        "relative_margin": RELATIVE_MARGIN,
        "steps": int(sum(len(rows) for rows in seen.values()) / max(1, len(seen))),
        "inputs": ranges,
    }


def main() -> None:
    """Measure the chosen cells (all by default) and write their range files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="*", default=list(ENV_IDS))
    parser.add_argument("--scripted", type=int, default=20)
    parser.add_argument("--random", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED)
    args = parser.parse_args()
    for env_id in args.cells:
        document = ranges_document(env_id, args.scripted, args.random, args.first_seed)
        path = ranges_path(env_id)
        path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"{env_id}: {document['steps']} steps → {path}")


if __name__ == "__main__":
    main()
