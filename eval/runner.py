"""Bundle intake and the certification episode runner (a pool of worker processes).

Intake accepts only an exported bundle directory and loads it through the bundle's one gate,
:func:`robocell.agents.bundle.load_bundle` (pickles, SB3 zips and torch files refused by name
before anything reads them; manifest digest, default ONNX domain, no external data, size
cap). Episodes run in ``spawn``-ed worker processes, each holding one env and one onnxruntime
session; every episode of the spec runs and counts, in index order.
"""

from __future__ import annotations

import math
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from robocell.errors import RobocellError, VerificationError
from robocell.eval.seeds import episode_seed
from robocell.util import canonical_json

if TYPE_CHECKING:  # a spawned worker imports this module: keep scipy.stats (spec) out of it
    from robocell.eval.spec import BenchmarkSpec


@dataclass(frozen=True)
class EpisodeJob:
    """What a worker needs to run episodes: the bundle, its digest, and the benchmark env."""

    bundle_dir: str
    onnx_sha256: str
    env_id: str
    env_kwargs: dict[str, Any]


def intake_bundle(path: str | Path, spec: BenchmarkSpec) -> Any:
    """Load a bundle for certification against ``spec``; raises VerificationError if unfit."""
    from robocell.agents.bundle import load_bundle

    policy = load_bundle(path)
    if policy.env_id != spec.env_id:
        raise VerificationError(
            f"{path}: bundle is for {policy.env_id!r} but the benchmark {spec.name!r} is for "
            f"{spec.env_id!r}"
        )
    return policy


def run_episodes(
    job: EpisodeJob,
    master_seed_hex: str,
    episodes: int,
    workers: int = 1,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run episodes 0 … n−1 with seeds derived from the master seed; records in index order.

    Each record is ``{"index", "seed", "metrics"}``; a metric that is not a finite number is
    stored as ``None``. Any episode that raises aborts the whole run: none may be dropped.
    """
    seeds = [episode_seed(master_seed_hex, i) for i in range(episodes)]
    bar = tqdm(total=episodes, desc="episodes", unit="ep", disable=not progress, leave=False)
    try:
        if workers <= 1:
            records = []
            for index, seed in enumerate(seeds):
                records.append(run_one_episode(job, index, seed))
                bar.update()
        else:
            records = _run_in_pool(job, seeds, workers, bar)
    finally:
        bar.close()
    return sorted(records, key=lambda record: record["index"])


def _run_in_pool(
    job: EpisodeJob, seeds: list[int], workers: int, bar: tqdm
) -> list[dict[str, Any]]:
    # spawn, not fork: the parent holds an onnxruntime session whose threads fork cannot copy.
    context = multiprocessing.get_context("spawn")
    records = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures: dict[Future, int] = {
            pool.submit(run_one_episode, job, index, seed): index
            for index, seed in enumerate(seeds)
        }
        try:
            for future in as_completed(futures):
                records.append(future.result())
                bar.update()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return records


# One (policy, env) per process, reused across its episodes; keyed by the job it was built for.
_WORKER_STATE: dict[str, tuple[Any, Any]] = {}


def run_one_episode(job: EpisodeJob, index: int, seed: int) -> dict[str, Any]:
    """Run one certification episode (in whichever process calls it)."""
    from robocell.envs.rollout import run_episode

    policy, env = _worker_policy_and_env(job)
    try:
        metrics = run_episode(env, policy.act, seed)
    except Exception as exc:
        raise RobocellError(f"episode {index} (seed {seed}) failed: {exc}") from exc
    return {"index": index, "seed": seed, "metrics": clean_metrics(metrics)}


def clean_metrics(metrics: dict[str, Any]) -> dict[str, float | None]:
    """Metrics as JSON-safe floats; NaN and infinities become ``None``."""
    cleaned: dict[str, float | None] = {}
    for key, value in metrics.items():
        number = float(value)
        cleaned[str(key)] = number if math.isfinite(number) else None
    return cleaned


def _worker_policy_and_env(job: EpisodeJob) -> tuple[Any, Any]:
    key = canonical_json(asdict(job)).decode()
    if key not in _WORKER_STATE:
        from robocell.agents.bundle import load_bundle
        from robocell.envs.make import make_cell

        policy = load_bundle(job.bundle_dir)
        if policy.onnx_sha256 != job.onnx_sha256:
            raise VerificationError(
                f"{job.bundle_dir}: policy.onnx changed during certification "
                f"(sha256 {policy.onnx_sha256}, intake saw {job.onnx_sha256})"
            )
        for _, old_env in _WORKER_STATE.values():
            old_env.close()
        _WORKER_STATE.clear()
        _WORKER_STATE[key] = (policy, make_cell(job.env_id, job.env_kwargs))
    return _WORKER_STATE[key]
