"""``robocell train CONFIG --seeds 0-4``: one ordinary run per seed, and a summary over seeds.

Layout of a seed group::

    GROUP/group.json            what the group was started with (a rerun must match it)
    GROUP/s<seed>/              an ordinary run directory per seed (TensorBoard, checkpoints,
                                ``robocell train --resume GROUP/s<seed>`` as for any run)
    GROUP/held_out/s<seed>.json the seed's held-out episodes (``robocell eval``'s seeds)
    GROUP/summary.json          per figure: IQM over seeds, its 95 % stratified-bootstrap CI and
                                every seed's mean; per seed: run directory, steps, wall time
    GROUP/summary.md            the same as tables, with summary.png (per-seed means, IQM, CI)

Each seed is one job of the executor seam (:mod:`robocell.executor`): local processes or Ray
tasks. Running the same command again continues: finished seeds are kept, interrupted ones
resumed from their latest checkpoint.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from robocell.errors import RobocellError
from robocell.executor import ExecutorOptions, run_jobs
from robocell.schema import to_dict
from robocell.train.config import RunConfig, config_digest, config_from_dict
from robocell.train.rundir import open_setup_dir
from robocell.train.seed_summary import write_summary
from robocell.util import atomic_write_json

FORMAT = "robocell-seed-group/1"
_SEEDS = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def parse_seeds(text: str) -> list[int]:
    """``0-4`` → 0 … 4; ``0,3,7`` and ``0-2,10`` work too. Duplicates and bad text are refused."""
    if not _SEEDS.match(text.replace(" ", "")):
        raise RobocellError(f"--seeds {text!r}: expected a range like 0-4 or a list like 0,3,7")
    seeds: list[int] = []
    for part in text.replace(" ", "").split(","):
        first, _, last = part.partition("-")
        low, high = int(first), int(last or first)
        if high < low:
            raise RobocellError(f"--seeds {text!r}: the range {part} runs backwards")
        seeds.extend(range(low, high + 1))
    if len(set(seeds)) != len(seeds):
        raise RobocellError(f"--seeds {text!r}: names a seed twice")
    return seeds


@dataclass(frozen=True)
class SeedGroup:
    """What one ``--seeds`` call asks for."""

    config: RunConfig
    seeds: list[int]
    root: Path
    command: str
    eval_first_seed: int
    eval_episodes: int

    def run_dir(self, seed: int) -> Path:
        """The run directory of ``seed``."""
        return self.root / f"s{seed}"

    def held_out_file(self, seed: int) -> Path:
        """The held-out episodes of ``seed``."""
        return self.root / "held_out" / f"s{seed}.json"

    def setup(self) -> dict[str, Any]:
        """What a rerun must match (``group.json``)."""
        return {
            "format": FORMAT,
            "config_digest": config_digest(self.config),
            "seeds": self.seeds,
            "eval_first_seed": self.eval_first_seed,
            "eval_episodes": self.eval_episodes,
        }


def default_group_dir(config: RunConfig, seeds: list[int], runs_root: str = "runs") -> Path:
    """``runs/<Cell>-<algo>-seeds<first>-<last>-<YYYYmmdd-HHMMSS>``."""
    cell = config.env_id.rsplit("/", 1)[-1]
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(runs_root) / f"{cell}-{config.algo}-seeds{seeds[0]}-{seeds[-1]}-{stamp}"


def train_seeds(
    group: SeedGroup, options: ExecutorOptions, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Train and evaluate every seed of ``group`` (each a job), then write the summary.

    A seed stopped by Ctrl-C or SIGTERM saves its checkpoint and ends the group with
    KeyboardInterrupt (no further seed starts); the same command continues it.
    """
    open_setup_dir(group.root, "group.json", group.setup(), "--run-dir")
    started = time.monotonic()
    todo = [s for s in group.seeds if not group.held_out_file(s).exists()]
    jobs = [_job(group, seed) for seed in todo]

    def done(index: int, result: dict[str, Any]) -> None:
        if result["interrupted"]:
            log(f"seed {todo[index]}: interrupted at step {result['timesteps']}")
            raise KeyboardInterrupt
        atomic_write_json(group.held_out_file(todo[index]), result)
        log(
            f"seed {todo[index]}: {result['timesteps']} steps in {result['wall_s']:.0f} s, "
            f"held-out success {100 * _success(result['episodes']):.0f}%"
        )

    run_jobs(train_and_evaluate, jobs, options, group.config.cpus_per_run, done)
    held_out = {s: json.loads(group.held_out_file(s).read_text()) for s in group.seeds}
    return write_summary(group, held_out, time.monotonic() - started, options.backend)


def train_and_evaluate(
    config_data: dict[str, Any], run_dir: str, command: str, first_seed: int, episodes: int
) -> dict[str, Any]:
    """The job of one seed: train (or resume) the run, then play its best model held out."""
    from robocell.train.evaluate import evaluate_run
    from robocell.train.trainer import train_or_resume

    config = config_from_dict(config_data)
    result = train_or_resume(config, run_dir, command)
    row: dict[str, Any] = {
        "seed": config.seed,
        "run_dir": run_dir,
        "timesteps": result.timesteps,
        "wall_s": result.wall_s,
        "interrupted": result.interrupted,
    }
    if not result.interrupted:
        run, played = evaluate_run(run_dir, "best", first_seed, episodes)
        row.update(checkpoint=str(run.checkpoint_path), first_seed=first_seed, episodes=played)
    return row


def _job(group: SeedGroup, seed: int) -> tuple[Any, ...]:
    data = to_dict(group.config)
    data.update(seed=seed, run_name=None)
    # Absolute paths: a Ray worker does not run in the driver's working directory.
    run_dir = str(group.run_dir(seed).resolve())
    return (data, run_dir, group.command, group.eval_first_seed, group.eval_episodes)


def _success(episodes: list[dict[str, float]]) -> float:
    return sum(m.get("success", 0.0) for m in episodes) / max(1, len(episodes))
