"""Bundle intake and the certification episode runner (a pool of worker processes).

Intake accepts only an exported bundle directory and loads it through the bundle's one gate,
:func:`robocell.agents.bundle.load_bundle` (pickles, SB3 zips and torch files refused by name
before anything reads them; manifest digest, default ONNX domain, no external data, size
cap) and must take the cell's observations and act in exactly the cell's action space (its
bounds too: a controller scales the raw output, so wider bounds would command more than the
cell allows). Episodes run in ``spawn``-ed worker processes, each holding one env and one
onnxruntime session; every episode of the spec runs and counts, in index order, and records
how many of its steps had an action outside the bundle's bounds (``invalid_actions``), how
many had a faulted (non-finite) observation (``policy_faults``: such an episode is a failed
one) and how many observations the bundle clipped to its ranges (``clipped_observations``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from robocell.errors import RobocellError, VerificationError
from robocell.eval.seeds import episode_seed
from robocell.executor import ExecutorOptions, run_jobs
from robocell.util import canonical_json

if TYPE_CHECKING:  # a spawned worker imports this module: keep scipy.stats (spec) out of it
    from robocell.eval.spec import BenchmarkSpec

# The episode log's count of steps whose action left the bundle's bounds (the action gate).
INVALID_ACTIONS = "invalid_actions"


@dataclass(frozen=True)
class EpisodeJob:
    """What a worker needs to run episodes: the bundle, its digest, and the benchmark env."""

    bundle_dir: str
    onnx_sha256: str
    env_id: str
    env_kwargs: dict[str, Any]


def intake_bundle(path: str | Path, spec: BenchmarkSpec) -> Any:
    """Load a bundle for certification against ``spec``; raises VerificationError if unfit.

    Besides every intake check: the bundle's cell is the spec's, and its observation inputs,
    action shape and action bounds are exactly those of the spec's cell.
    """
    from robocell.agents.bundle import load_bundle
    from robocell.envs.make import make_cell

    policy = load_bundle(path)
    if policy.env_id != spec.env_id:
        raise VerificationError(
            f"{path}: bundle is for {policy.env_id!r} but the benchmark {spec.name!r} is for "
            f"{spec.env_id!r}"
        )
    env = make_cell(spec.env_id, spec.env_kwargs)
    try:
        policy.check_observation_space(env.observation_space)
        policy.check_action_space(env.action_space)
    finally:
        env.close()
    return policy


class CountInvalidActions:
    """A policy wrapper that counts the steps whose action leaves the bundle's bounds.

    The action goes to the cell unchanged (it clips, or ends the episode with a fault for a
    non-finite one); the count goes into the episode's log, where the action gate reads it.
    """

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.invalid_steps = 0

    def reset(self) -> None:
        """A new episode (the bundle's fault and clip counts start again too)."""
        self.invalid_steps = 0
        self.policy.reset()

    def episode_counts(self) -> dict[str, float]:
        """The bundle's faulted steps and clipped observations in this episode."""
        return self.policy.episode_counts()

    def __call__(self, obs: Any) -> Any:
        """The policy's action; counted when it is out of bounds."""
        action = self.policy.act(obs)
        if not self.policy.action_in_bounds(action):
            self.invalid_steps += 1
        return action


def run_episodes(
    job: EpisodeJob,
    master_seed_hex: str,
    episodes: int,
    workers: int = 1,
    progress: bool = True,
    executor: ExecutorOptions | None = None,
) -> list[dict[str, Any]]:
    """Run episodes 0 … n−1 with seeds derived from the master seed; records in index order.

    Each record is ``{"index", "seed", "metrics"}``; a metric that is not a finite number is
    stored as ``None``. Any episode that raises aborts the whole run: none may be dropped. The
    episodes go through the executor seam (:mod:`robocell.executor`): ``workers`` local
    processes, or Ray tasks when ``executor`` says so; the records are the same either way.
    """
    seeds = [episode_seed(master_seed_hex, i) for i in range(episodes)]
    options = executor or ExecutorOptions(workers=workers)
    jobs = [(job, index, seed) for index, seed in enumerate(seeds)]
    bar = tqdm(total=episodes, desc="episodes", unit="ep", disable=not progress, leave=False)
    try:
        records = run_jobs(run_one_episode, jobs, options, on_done=lambda *_: bar.update())
    finally:
        bar.close()
    return sorted(records, key=lambda record: record["index"])


# One (policy, env) per process, reused across its episodes; keyed by the job it was built for.
_WORKER_STATE: dict[str, tuple[Any, Any]] = {}


def run_one_episode(job: EpisodeJob, index: int, seed: int) -> dict[str, Any]:
    """Run one certification episode (in whichever process calls it)."""
    policy, env = _worker_policy_and_env(job)
    try:
        metrics = play_episode(env, policy, seed)
    except Exception as exc:
        raise RobocellError(f"episode {index} (seed {seed}) failed: {exc}") from exc
    return {"index": index, "seed": seed, "metrics": metrics}


def play_episode(
    env: Any, policy: Any, seed: int, wrap: Callable[[Any], Any] = lambda act: act
) -> dict[str, float | None]:
    """One episode as certification logs it: its metrics plus the bundle's invalid actions.

    ``wrap`` may wrap the counted policy (e.g. to film the episode) without changing a number.
    """
    from robocell.envs.rollout import run_episode, with_policy_counts

    checked = CountInvalidActions(policy)
    checked.reset()  # ``wrap`` may hide reset() from run_episode
    # The counts come from the counted policy itself: ``wrap`` may hide its methods.
    metrics = with_policy_counts(run_episode(env, wrap(checked), seed), checked.episode_counts())
    metrics[INVALID_ACTIONS] = float(checked.invalid_steps)
    return clean_metrics(metrics)


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
