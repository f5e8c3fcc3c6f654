"""Sort accuracy of vision bundles and of the classical sorter under stronger randomisation.

    python scripts/vision_robustness.py BUNDLE [BUNDLE ...] [--episodes 50] [--seed 2000000]
        [--setting NAME ...]

Every setting changes the look of the episodes (``colour_jitter``, ``light_tilt_deg``,
``light_level_jitter``: see ``robocell.envs.vision.scene.Appearance``) on top of each
bundle's own ``env_kwargs``; the same seeds are played by every bundle (onnxruntime, as
deployed) and by the scripted sorter. Prints a Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from robocell.agents.bundle import load_bundle
from robocell.envs.make import make_cell, make_controller
from robocell.envs.rollout import episode_seeds, run_episode, summarize

# name -> env kwargs on top of the defaults (tilt 35°, level jitter 0.2, colour jitter 0.05)
SETTINGS: dict[str, dict[str, float]] = {
    "default": {},
    "colour_jitter 0.10": {"colour_jitter": 0.10},
    "colour_jitter 0.15": {"colour_jitter": 0.15},
    "colour_jitter 0.20": {"colour_jitter": 0.20},
    "colour_jitter 0.25": {"colour_jitter": 0.25},
    "light_tilt_deg 60": {"light_tilt_deg": 60.0},
    "light_level_jitter 0.4": {"light_level_jitter": 0.4},
    "tilt 60 + level 0.4 + colour 0.10": {
        "light_tilt_deg": 60.0,
        "light_level_jitter": 0.4,
        "colour_jitter": 0.10,
    },
}


def play(env_id: str, kwargs: dict[str, Any], policy: Any, seeds: list[int]) -> dict[str, float]:
    """Success rate, mean sort accuracy, escape rate and energy per part of ``policy`` (None:
    the scripted sorter)."""
    env = make_cell(env_id, kwargs)
    try:
        actor = make_controller(env_id, env.unwrapped) if policy is None else policy
        summary = summarize([run_episode(env, actor, seed) for seed in seeds])
    finally:
        env.close()
    return {
        "success": summary["success_rate"],
        "sort_accuracy": summary["mean/sort_accuracy"],
        "escape_rate": summary["mean/escape_rate"],
        "energy_per_part_j": summary["mean/energy_per_part_j"],
    }


def main() -> None:
    """Play every setting with the sorter and each bundle; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=2_000_000)
    parser.add_argument("--setting", action="append", choices=list(SETTINGS),
                        help="play only these settings (default: all)")  # fmt: skip
    args = parser.parse_args()
    bundles = [load_bundle(path) for path in args.bundles]
    seeds = episode_seeds(args.seed, args.episodes)
    rows = []
    for name in args.setting or list(SETTINGS):
        change = SETTINGS[name]
        row: dict[str, Any] = {"setting": name}
        base = {**bundles[0].env_kwargs, **change}
        row["sorter"] = play(bundles[0].env_id, base, None, seeds)
        for path, bundle in zip(args.bundles, bundles, strict=True):
            row[path] = play(bundle.env_id, {**bundle.env_kwargs, **change}, bundle, seeds)
        rows.append(row)
        print(_line(row, args.bundles), flush=True)
    learned = [[row[path]["sort_accuracy"] for path in args.bundles] for row in rows]
    print(json.dumps({"episodes": args.episodes, "first_seed": args.seed, "rows": rows,
                      "learned_mean": [float(np.mean(r)) for r in learned]}))  # fmt: skip


def _line(row: dict[str, Any], paths: list[str]) -> str:
    cells = [f"{row['sorter']['sort_accuracy']:.3f}"]
    cells += [f"{row[path]['sort_accuracy']:.3f} ({row[path]['success']:.2f})" for path in paths]
    return f"| {row['setting']} | " + " | ".join(cells) + " |"


if __name__ == "__main__":
    main()
