"""A 100-episode weld certificate (the packaged ``weld`` spec) with 1 and 2 workers.

The certified bundle is the weld cell's scripted controller written as ONNX
(:mod:`robocell.agents.scripted`); the time covers intake, all episodes, statistics, report
and signing. On a shared machine the wall time depends on what else runs, so the CPU seconds
are split into what scales with workers and what does not:

- ``serial_cpu_s``: the certifying process alone (intake, statistics, report, signing, the
  pool's bookkeeping), from the 2-worker run, where the episodes run elsewhere;
- ``episode_cpu_s``: CPU per episode, from the 1-worker run (the certifying process runs the
  episodes itself) less the serial part; the 2-worker run's workers need more per episode
  on a loaded machine (``episode_cpu_s_in_2_loaded_workers``: the cores' caches are shared
  with the other jobs), so this is the idle-machine figure;
- ``worker_startup_cpu_s``: what one spawned worker spends before its first episode (Python,
  imports, bundle, env), measured in a process of its own that does just that.

``idle_speedup_2_vs_1`` = (serial + n·episode) / (serial + start-up + n·episode/2 + half an
episode of tail): the wall-clock speed-up these CPU costs give on an idle 2-core machine.
``wall_speedup_2_vs_1`` is what this run's wall clock gave, under its load.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from robocell.agents.bundle import ONNX_FILE, subject_digests
from robocell.agents.scripted import export_scripted
from robocell.eval.certify import certify
from robocell.eval.keys import generate_keypair, load_private_key
from robocell.eval.seeds import commitment, new_master_seed
from robocell.eval.spec import load_spec

WORKERS = (1, 2)
WELD_ID = "robocell/WeldSeam-v0"
# What a spawned pool worker does before its first episode (runner._worker_policy_and_env).
STARTUP = """
import sys
from robocell.eval.runner import EpisodeJob, _worker_policy_and_env
_worker_policy_and_env(EpisodeJob(sys.argv[1], sys.argv[2], sys.argv[3], {}))
"""


def run() -> dict:
    """Certify the scripted weld bundle on the full weld benchmark once per worker count."""
    spec = load_spec("weld")
    results: dict = {"episodes": spec.episodes, "spec": spec.name}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle = export_scripted(WELD_ID, root / "bundle")
        key = load_private_key(generate_keypair(root / "keys")[0])
        seed = new_master_seed()
        for workers in WORKERS:
            results[f"load_avg_1min_before_workers_{workers}"] = round(os.getloadavg()[0], 2)
            start, own, children = time.perf_counter(), _cpu_s(), _children_cpu_s()
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
            results[f"wall_s_workers_{workers}"] = round(time.perf_counter() - start, 2)
            results[f"parent_cpu_s_workers_{workers}"] = round(_cpu_s() - own, 2)
            results[f"worker_cpu_s_workers_{workers}"] = round(_children_cpu_s() - children, 2)
            results["verdict"] = result.verdict
            results["criteria"] = {c.name: f"{c.k}/{c.n}" for c in result.evaluation.criteria}
        results["worker_startup_cpu_s"] = _startup_cpu_s(bundle)
    results.update(_model(results, spec.episodes))
    return results


def _model(results: dict, episodes: int) -> dict:
    """CPU split and the idle-machine speed-up it gives (see the module docstring)."""
    serial = results["parent_cpu_s_workers_2"]
    startup = results["worker_startup_cpu_s"]
    episode = (results["parent_cpu_s_workers_1"] - serial) / episodes
    one = serial + episodes * episode
    two = serial + startup + episodes * episode / 2 + episode / 2
    contended = (results["worker_cpu_s_workers_2"] - 2 * startup) / episodes
    return {
        "serial_cpu_s": serial,
        "episode_cpu_s": round(episode, 3),
        "episode_cpu_s_in_2_loaded_workers": round(contended, 3),
        "idle_wall_s_workers_1": round(one, 1),
        "idle_wall_s_workers_2": round(two, 1),
        "idle_speedup_2_vs_1": round(one / two, 2),
        "wall_speedup_2_vs_1": round(results["wall_s_workers_1"] / results["wall_s_workers_2"], 2),
    }


def _startup_cpu_s(bundle: Path) -> float:
    """CPU seconds of a fresh process that does what a pool worker does before episode 1."""
    digest = subject_digests(bundle)[ONNX_FILE]
    before = _children_cpu_s()
    subprocess.run([sys.executable, "-c", STARTUP, str(bundle), digest, WELD_ID], check=True)
    return round(_children_cpu_s() - before, 2)


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _children_cpu_s() -> float:
    """CPU seconds of this process's finished children (the pool's workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


if __name__ == "__main__":
    print(run())
