"""The figures of issue 16 from one ``make bench`` run, each as a ratio to its limit.

- env steps per CPU second: limit = the raw ``stepSimulation`` rate of the same scene over
  the physics steps per action (the rate if the env added nothing); ratio = physics
  efficiency;
- reset: limit = one env step (ratio = env steps a reset costs);
- certificate with 2 workers: limit = the 1-worker certificate; ratio = speed-up, from the
  CPU split on an idle 2-core machine and from this run's wall clock;
- PPO training frames per second: limit = the same 2 subprocess envs stepped alone.

Every entry carries the issue's target; ``met`` says whether this run reached it.
"""

from __future__ import annotations

from typing import Any

STEP_TARGETS = {  # env steps per CPU second, physics efficiency
    "robocell/WeldSeam-v1": (800.0, 0.80),
    "robocell/PegInsert-v0": (1500.0, 0.50),
    "robocell/VisionSort-v1": (60.0, None),
}
RESET_TARGETS_MS = {
    "robocell/WeldSeam-v1": 5.0,
    "robocell/PegInsert-v0": 5.0,
    "robocell/VisionSort-v1": 10.0,
}
CERTIFY_SPEEDUP_TARGET = 1.8


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's figures from the modules' results (those that ran)."""
    summary: dict[str, Any] = {}
    if "envs" in results:
        envs = results["envs"]
        summary["load_avg_1min_envs"] = [envs["load_avg_1min_before"], envs["load_avg_1min_after"]]
        for env_id in STEP_TARGETS:
            if env_id in envs:
                summary[env_id] = _cell(env_id, envs[env_id])
    if "certify" in results:
        summary["certificate_2_workers"] = _certificate(results["certify"])
    if "train" in results:
        summary["ppo_2_subprocess_envs"] = _training(results["train"])
    return summary


def _cell(env_id: str, figures: dict[str, Any]) -> dict[str, Any]:
    steps_target, efficiency_target = STEP_TARGETS[env_id]
    rate = figures["env_steps_per_cpu_s"]
    limit = figures["raw_physics_steps_per_cpu_s"] / figures["physics_steps_per_action"]
    reset_ms = figures["reset_ms_cpu"]
    return {
        "env_steps_per_cpu_s": {
            "value": rate,
            "limit": round(limit, 1),
            "ratio": figures["physics_efficiency"],
            "target": {"value": steps_target, "ratio": efficiency_target},
            "met": rate >= steps_target
            and (efficiency_target is None or figures["physics_efficiency"] >= efficiency_target),
        },
        "reset_ms_cpu": {
            "value": reset_ms,
            "limit_ms": round(1000.0 / rate, 2),
            "ratio": round(reset_ms * rate / 1000.0, 2),
            "target": RESET_TARGETS_MS[env_id],
            "met": reset_ms <= RESET_TARGETS_MS[env_id],
        },
    }


def _certificate(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        "idle_model": {
            "value_s": figures["idle_wall_s_workers_2"],
            "limit_s": figures["idle_wall_s_workers_1"],
            "ratio": figures["idle_speedup_2_vs_1"],
        },
        "wall_clock_this_run": {
            "value_s": figures["wall_s_workers_2"],
            "limit_s": figures["wall_s_workers_1"],
            "ratio": figures["wall_speedup_2_vs_1"],
            "load_avg_1min": figures["load_avg_1min_before_workers_2"],
        },
        "target": CERTIFY_SPEEDUP_TARGET,
        "met": figures["idle_speedup_2_vs_1"] >= CERTIFY_SPEEDUP_TARGET,
    }


def _training(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        env_id: {
            "fps": cell["fps"],
            "limit_fps": cell["env_only_fps"],
            "ratio": cell["fps_over_env_only"],
            "env_wait_share": cell["env_wait_share"],
            "update_share": cell["update_share"],
        }
        for env_id, cell in figures.items()
        if isinstance(cell, dict)
    } | {"load_avg_1min": [figures["load_avg_1min_before"], figures["load_avg_1min_after"]]}
