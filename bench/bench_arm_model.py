"""The peg cell's impedance controller: PyBullet's model and NumPy (v0) against Pinocchio's
model and the compiled law (v1), in microseconds per call.

- ``model_terms_us``: the arm's TCP Jacobian, mass matrix and inverse dynamics at one state
  (v0: three PyBullet calls; v1: one :meth:`ArmModel.update`);
- ``update_model_us``: the controller's per-period refresh and linearisation;
- ``law_us``: the per-physics-step law, joint reading to torques (v0: parse the reading and
  one 7 × 14 product; v1: one compiled call);
- ``apply_us``: the whole per-physics-step call, the torque command included.

Each figure is the best of ``REPEATS`` blocks of process CPU time, in an env after 20 steps
of a seeded episode (the arm in torque control near the hole), so a loaded machine inflates
it less than a mean would.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

from robocell.envs.peg.env import PegInsertEnv, PegInsertEnvV1
from robocell.envs.peg.impedance_compiled import law_torques

REPEATS = 7
CALLS = 2000


def _best_us(call: Callable[[], object], calls: int = CALLS) -> float:
    """Best of ``REPEATS`` blocks: CPU microseconds per call."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.process_time()
        for _ in range(calls):
            call()
        best = min(best, (time.process_time() - start) / calls)
    return round(best * 1e6, 2)


def _ready(env: PegInsertEnv) -> PegInsertEnv:
    env.reset(seed=3)
    for _ in range(20):
        env.step(np.array([0.5, -0.5, -0.5], np.float32))
    return env


def _v0(env: PegInsertEnv) -> dict[str, float]:
    robot, controller = env.robot, env.task.controller
    state = robot.joint_state()
    q, qd = state.q, state.qd

    def terms() -> None:
        robot.jacobian(q)
        robot.sim.mass_matrix(robot.name, q)
        robot.gravity_torques(q, qd)

    def law() -> np.ndarray:
        arm = robot.joint_reading()[: robot.n_joints]
        return controller.torques(np.array([s[0] for s in arm] + [s[1] for s in arm]))

    return _figures(terms, controller.update_model, law, controller.apply)


def _v1(env: PegInsertEnv) -> dict[str, float]:
    robot, controller = env.robot, env.task.controller
    state = robot.joint_state()
    q, qd = state.q, state.qd

    def law() -> np.ndarray:
        return law_torques(robot.joint_reading(), controller._offset, controller._gain)

    return _figures(
        lambda: controller.model.update(q, qd), controller.update_model, law, controller.apply
    )


def _figures(terms: Callable, update: Callable, law: Callable, apply: Callable) -> dict:
    return {
        "model_terms_us": _best_us(terms),
        "update_model_us": _best_us(update, CALLS // 4),
        "law_us": _best_us(law),
        "apply_us": _best_us(apply),
    }


def run() -> dict[str, object]:
    """Both controllers, measured in the same process, and the machine's load."""
    results: dict[str, object] = {"load_avg_1min_before": round(os.getloadavg()[0], 2)}
    for name, make, figures in (("v0", PegInsertEnv, _v0), ("v1", PegInsertEnvV1, _v1)):
        env = _ready(make())
        results[f"PegInsert-{name}"] = figures(env)
        env.close()
    results["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
