"""Single-observation policy latency: the exported bundle (onnxruntime) vs SB3 ``predict``.

For SB3's default MLP policies on the weld cell's spaces (16 observations → 4 actions; PPO
64×64 tanh, SAC 256×256 ReLU), each with observation normalisation, this exports a real
bundle (parity-checked) and times, in the same process, one call at a time, one thread:

* ``onnxruntime``: ``InferenceSession.run`` on a prepared one-observation feed (the runtime);
* ``bundle_act``: :meth:`BundlePolicy.act` (numpy feed building included);
* ``sb3_predict``: the training-side pipeline, ``NormalizerStats.normalize`` + SB3
  ``predict(deterministic=True)`` with ``torch.set_num_threads(1)``.

Weights are untrained (latency does not depend on their values). The garbage collector is
paused while timing, for every contender alike. Each call is timed twice: wall clock
(``p50_us``…, what a control loop sees, including time the scheduler gives to other
processes) and the calling thread's CPU time (``cpu_p50_us``…, the work itself), because on
a shared machine the wall-clock tail measures the neighbours more than the policy.
The ``quietest_window`` figures are the p50 and p99 of the 2,000 consecutive calls (of the
20,000) whose p99 is lowest: an estimate of the latency on an otherwise idle core.
``empty_call`` times a call that does nothing: the cost of the timers themselves (reading the
thread CPU clock is a system call); ``identity_graph`` times ``session.run`` on a graph of one
Identity op: onnxruntime's own per-call cost, without any network. The load average before
and after is recorded.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from onnx import TensorProto, helper

import robocell  # noqa: F401  (registers the cells)
from robocell.agents.bundle.policy import inference_session, load_bundle
from robocell.agents.export import ExportSource, TorchPolicy, export_model
from robocell.normalizer import NormalizerStats, RunningStats

ENV_ID = "robocell/WeldSeam-v0"
CALLS = 20_000
WARMUP = 1_000
WINDOW = 2_000  # calls per window for the quietest-window figures


def run() -> dict:
    """Latency percentiles (µs) per policy and contender, and SB3 / bundle ratios."""
    torch.set_num_threads(1)
    observations = _observations(500)
    stats = _normalizer(observations)
    results: dict[str, Any] = {"calls": CALLS, "threads": 1, "env_id": ENV_ID}
    results["load_average_before"] = os.getloadavg()[0]
    results["empty_call"] = _percentiles(lambda i: None)  # what the timers themselves cost
    results["identity_graph"] = _identity_graph(observations)
    for name, algo in (("ppo_default_mlp_64x64", "ppo"), ("sac_default_mlp_256x256", "sac")):
        results[name] = _measure(_model(algo), stats, observations, algo)
    results["load_average_after"] = os.getloadavg()[0]
    return results


def _identity_graph(observations: list[np.ndarray]) -> dict[str, float]:
    """``session.run`` on a one-op graph: onnxruntime's per-call cost without a network."""
    shape = [1, len(observations[0])]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["obs"], ["action"])],
        "identity",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = inference_session(model.SerializeToString())
    feeds = [{"obs": obs.reshape(1, -1)} for obs in observations]
    return _percentiles(lambda i: session.run(["action"], feeds[i % len(feeds)]))


def _observations(count: int) -> list[np.ndarray]:
    env = gym.make(ENV_ID)
    env.action_space.seed(0)
    observations, (obs, _) = [], env.reset(seed=0)
    while len(observations) < count:
        observations.append(obs)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return observations


def _normalizer(observations: list[np.ndarray]) -> NormalizerStats:
    data = np.asarray(observations, dtype=np.float64)
    return NormalizerStats(10.0, 1e-8, RunningStats(data.mean(0), data.var(0), float(len(data))))


def _model(algo: str) -> Any:
    from stable_baselines3 import PPO, SAC

    env = gym.make(ENV_ID)
    model = (PPO if algo == "ppo" else SAC)("MlpPolicy", env, seed=0, device="cpu")
    env.close()
    return model


def _measure(model: Any, stats: NormalizerStats, observations: list, algo: str) -> dict:
    source = ExportSource(model, stats, ENV_ID, {}, algo, "bench", "0" * 64, "untrained")
    with tempfile.TemporaryDirectory() as tmp:
        report = export_model(source, Path(tmp) / "bundle", closed_loop_episodes=0)
        policy = load_bundle(report.bundle_dir)
        onnx_bytes = (report.bundle_dir / "policy.onnx").read_bytes()
    session = inference_session(onnx_bytes)
    feeds = [{"obs": obs.reshape(1, -1)} for obs in observations]
    reference = TorchPolicy(model, stats)
    timings = {
        "onnxruntime": _percentiles(lambda i: session.run(["action"], feeds[i % len(feeds)])),
        "bundle_act": _percentiles(lambda i: policy.act(observations[i % len(observations)])),
        "sb3_predict": _percentiles(lambda i: reference(observations[i % len(observations)])),
    }
    sb3, bundle = timings["sb3_predict"], timings["bundle_act"]
    return {
        **timings,
        "onnx_bytes": len(onnx_bytes),
        "parity_max_abs_diff": report.max_abs_diff,
        "speedup_p50": sb3["p50_us"] / bundle["p50_us"],
        "speedup_p99": sb3["p99_us"] / bundle["p99_us"],
    }


def _percentiles(call: Callable[[int], Any]) -> dict[str, float]:
    for i in range(WARMUP):
        call(i)
    wall_ns = np.empty(CALLS, dtype=np.int64)
    cpu_ns = np.empty(CALLS, dtype=np.int64)
    gc.disable()
    try:
        for i in range(CALLS):
            cpu_start, wall_start = time.thread_time_ns(), time.perf_counter_ns()
            call(i)
            wall_ns[i] = time.perf_counter_ns() - wall_start
            cpu_ns[i] = time.thread_time_ns() - cpu_start
    finally:
        gc.enable()
    result = {}
    for name, values in (("", wall_ns), ("cpu_", cpu_ns)):
        micros = values / 1000.0
        for q in (50, 99, 99.9):
            result[f"{name}p{q:g}_us"] = float(np.percentile(micros, q))
    windows = (wall_ns / 1000.0).reshape(-1, WINDOW)
    quietest = windows[np.argmin(np.percentile(windows, 99, axis=1))]
    result["quietest_window_p50_us"] = float(np.percentile(quietest, 50))
    result["quietest_window_p99_us"] = float(np.percentile(quietest, 99))
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
