"""The executor seam: run a list of independent jobs in local processes or on a Ray cluster.

Training seeds, sweep trials, certification episodes and improve challengers all reach more
cores through :func:`run_jobs`; nothing else in robocell schedules work across processes or
machines. A job is a picklable module-level function and its arguments; results come back in
job order, whatever order the jobs finish in.

Local (the default; no Ray needed)
    ``workers <= 1`` runs the jobs one after the other in this process; more workers run them in
    a ``spawn``-ed process pool (spawn, not fork: a parent holding onnxruntime or torch threads
    cannot be forked safely).

Ray (the ``ray`` extra: ``pip install robocell[ray]``)
    Chosen by ``--ray``, ``--ray-address ADDR`` or the ``RAY_ADDRESS`` environment variable.
    With an address, robocell attaches to that cluster with a bare ``ray.init(address)``: Ray
    refuses resource arguments when attaching, the cluster's own ``ray start --num-cpus`` sets
    them. Without one it starts a local Ray with ``num_cpus`` = this machine's cores and no
    dashboard. An already initialised Ray (a test fixture, ``ray job submit``) is used as it is.
    Every job is one Ray task asking for ``cpus_per_job`` CPUs, so Ray never runs more jobs on a
    node than it has cores. Workers import robocell from their own Python environment: install
    it on every node, or give the cluster a ``runtime_env`` (docs/SCALING.md).

This module imports neither torch nor Ray at import time, so the torch-free certification
modules can use it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from robocell.errors import RobocellError

RAY_MISSING = "Ray is not installed: pip install robocell[ray] (or pip install -e '.[ray]')"

Job = tuple[Any, ...]
"""The positional arguments of one call of the job function."""


@dataclass(frozen=True)
class ExecutorOptions:
    """Where :func:`run_jobs` runs: local processes, or Ray (local or attached)."""

    use_ray: bool = False
    """Run the jobs as Ray tasks."""
    address: str | None = None
    """A Ray cluster to attach to (``ray://…``, ``HOST:PORT`` or ``auto``); None: local Ray."""
    workers: int = 1
    """Local parallel processes (1: in this process, one job after the other); not used on Ray."""

    @property
    def backend(self) -> str:
        """``ray`` or ``local``: what a report says the jobs ran on."""
        return "ray" if self.use_ray else "local"


def executor_options(
    ray_flag: bool = False, address: str | None = None, workers: int = 1
) -> ExecutorOptions:
    """Options from the command line: Ray when asked for or when ``RAY_ADDRESS`` is set."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    return ExecutorOptions(ray_flag or address is not None, address, workers)


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--ray`` and ``--ray-address`` to a command."""
    parser.add_argument(
        "--ray",
        action="store_true",
        help="run on Ray: a local Ray on this machine's cores, or RAY_ADDRESS's cluster",
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="attach to this Ray cluster (e.g. auto, HOST:6379, ray://HOST:10001); implies --ray",
    )


def options_from_args(args: argparse.Namespace, workers: int = 1) -> ExecutorOptions:
    """:class:`ExecutorOptions` from the parsed ``--ray`` / ``--ray-address`` arguments."""
    return executor_options(args.ray, args.ray_address, workers)


def run_jobs(
    function: Callable[..., Any],
    jobs: Sequence[Job],
    options: ExecutorOptions,
    cpus_per_job: float = 1,
    on_done: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """``[function(*job) for job in jobs]``, run where ``options`` say; results in job order.

    ``on_done(index, result)`` is called as each job finishes (in finishing order). The first job
    that raises stops the rest (queued jobs are cancelled) and its exception is raised here.
    """
    if options.use_ray:
        return _run_on_ray(function, jobs, options.address, cpus_per_job, on_done)
    if options.workers <= 1 or len(jobs) <= 1:
        return _run_inline(function, jobs, on_done)
    return _run_in_pool(function, jobs, options.workers, on_done)


def _run_inline(
    function: Callable[..., Any],
    jobs: Sequence[Job],
    on_done: Callable[[int, Any], None] | None,
) -> list[Any]:
    results = []
    for index, job in enumerate(jobs):
        results.append(function(*job))
        if on_done is not None:
            on_done(index, results[-1])
    return results


def _run_in_pool(
    function: Callable[..., Any],
    jobs: Sequence[Job],
    workers: int,
    on_done: Callable[[int, Any], None] | None,
) -> list[Any]:
    context = multiprocessing.get_context("spawn")
    results: dict[int, Any] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures: dict[Future, int] = {pool.submit(function, *job): i for i, job in enumerate(jobs)}
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if on_done is not None:
                    on_done(futures[future], results[futures[future]])
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return [results[i] for i in range(len(jobs))]


def parallelism(options: ExecutorOptions) -> int:
    """How many jobs can run at once: the local workers, or the Ray cluster's CPUs."""
    if not options.use_ray:
        return max(1, options.workers)
    ray = init_ray(options.address)
    return int(ray.cluster_resources().get("CPU", 1))


# ---------------------------------------------------------------------- Ray
def import_ray() -> Any:
    """The ``ray`` module, or a RobocellError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RobocellError(RAY_MISSING) from None
    return ray


def init_ray(address: str | None) -> Any:
    """Connect to Ray once per process (see the module docstring) and return the module."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    try:
        if address is not None:
            ray.init(address=address)  # attaching: the cluster sets its own resources
        else:
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False)
    except ConnectionError as exc:
        raise RobocellError(f"cannot reach the Ray cluster at {address}: {exc}") from None
    return ray


def _run_on_ray(
    function: Callable[..., Any],
    jobs: Sequence[Job],
    address: str | None,
    cpus_per_job: float,
    on_done: Callable[[int, Any], None] | None,
) -> list[Any]:
    ray = init_ray(address)
    task = ray.remote(num_cpus=cpus_per_job)(function)
    refs = [task.remote(*job) for job in jobs]
    index = {ref: i for i, ref in enumerate(refs)}
    results: dict[int, Any] = {}
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            results[index[done[0]]] = get_ray_result(ray, done[0])
            if on_done is not None:
                on_done(index[done[0]], results[index[done[0]]])
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    return [results[i] for i in range(len(jobs))]


def get_ray_result(ray: Any, ref: Any) -> Any:
    """``ray.get(ref)``; a job's RobocellError comes back as itself, without Ray's traceback."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, RobocellError):
            raise exc.cause from None
        raise
