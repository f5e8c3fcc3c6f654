"""Wall time of a 100-episode weld certificate (the packaged ``weld`` spec) with 1 and 2 workers.

The certified bundle is the weld cell's scripted controller written as ONNX
(:mod:`robocell.agents.scripted`); the time covers intake, all episodes, statistics, report
and signing.
CPU seconds (this process plus the pool's workers) and the load average are recorded too: on a
shared machine the wall time depends on what else runs.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path

from robocell.agents.scripted import export_scripted
from robocell.eval.certify import certify
from robocell.eval.keys import generate_keypair, load_private_key
from robocell.eval.seeds import commitment, new_master_seed
from robocell.eval.spec import load_spec

WORKERS = (1, 2)


def run() -> dict:
    """Certify the scripted weld bundle on the full weld benchmark once per worker count."""
    spec = load_spec("weld")
    results: dict = {"episodes": spec.episodes, "spec": spec.name}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle = export_scripted("robocell/WeldSeam-v1", root / "bundle")
        key = load_private_key(generate_keypair(root / "keys")[0])
        seed = new_master_seed()
        for workers in WORKERS:
            results[f"load_avg_1min_before_workers_{workers}"] = round(os.getloadavg()[0], 2)
            start, cpu_start = time.perf_counter(), _cpu_s()
            result = certify(
                bundle,
                spec,
                seed,
                commitment(seed),
                key,
                root / f"cert_{workers}",
                workers=workers,
                progress=False,
            )
            wall_s = time.perf_counter() - start
            results[f"wall_s_workers_{workers}"] = round(wall_s, 2)
            results[f"cpu_s_workers_{workers}"] = round(_cpu_s() - cpu_start, 2)
            results[f"s_per_episode_workers_{workers}"] = round(wall_s / spec.episodes, 3)
            results["verdict"] = result.verdict
            results["criteria"] = {c.name: f"{c.k}/{c.n}" for c in result.evaluation.criteria}
    results["speedup_2_vs_1"] = round(results["wall_s_workers_1"] / results["wall_s_workers_2"], 2)
    return results


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the pool's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    print(run())
