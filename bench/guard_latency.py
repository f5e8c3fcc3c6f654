"""Latency of a bundle's graph with and without the input guard (batch 1, one thread).

    python bench/guard_latency.py UNGUARDED_BUNDLE GUARDED_BUNDLE [--calls 20000]

Both graphs get the same real observation from the cell (reset seed 2 000 000); prints p50
and p99 per call in µs for each, timed with ``time.perf_counter_ns`` around
``session.run``, after 500 warm-up calls.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from robocell.agents.bundle.policy import inference_session
from robocell.envs.make import make_cell


def _latencies(bundle: Path, feed: dict[str, np.ndarray], calls: int) -> np.ndarray:
    session = inference_session((bundle / "policy.onnx").read_bytes())
    outputs = [value.name for value in session.get_outputs()]
    for _ in range(500):
        session.run(outputs, feed)
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter_ns()
        session.run(outputs, feed)
        times[i] = time.perf_counter_ns() - start
    return times / 1000.0


def main() -> None:
    """Time both bundles on the same observation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("unguarded", type=Path)
    parser.add_argument("guarded", type=Path)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    manifest = json.loads((args.guarded / "manifest.json").read_text())
    env = make_cell(manifest["env_id"], manifest["env_kwargs"])
    obs, _ = env.reset(seed=2_000_000)
    env.close()
    feed = {
        item["name"]: np.asarray(obs if item["key"] is None else obs[item["key"]], item["dtype"])[
            None
        ]
        for item in manifest["observation"]
    }
    for label, bundle in (("without guard", args.unguarded), ("with guard", args.guarded)):
        us = _latencies(bundle, feed, args.calls)
        p50, p99 = np.percentile(us, [50, 99])
        print(f"{manifest['env_id']} {label}: p50 {p50:.1f} µs, p99 {p99:.1f} µs")


if __name__ == "__main__":
    main()
