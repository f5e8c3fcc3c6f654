"""``robocell sweep CONFIG --space SPACE --trials N [--seeds K] [--ray …]``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from robocell.cli_helpers import positive_int
from robocell.errors import RobocellError
from robocell.executor import add_executor_arguments, options_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sweep`` to the CLI."""
    sweep = subparsers.add_parser(
        "sweep",
        help="hyperparameter search on Ray Tune (Optuna TPE sampler, ASHA early stopping)",
    )
    sweep.add_argument("config", help="training config, e.g. configs/peg_ppo.yaml")
    sweep.add_argument(
        "--space", required=True, help="search space YAML, or a packaged one: weld, peg"
    )
    sweep.add_argument("--trials", type=positive_int, required=True, help="trials to sample")
    sweep.add_argument(
        "--seeds", type=positive_int, default=1, help="training seeds per trial (default 1)"
    )
    sweep.add_argument(
        "--sweep-dir",
        help="sweep directory (default sweeps/<config>-<space>); the same one continues a sweep",
    )
    sweep.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value before the search, e.g. total_timesteps=50000",
    )
    add_executor_arguments(sweep)
    sweep.set_defaults(func=_sweep)


def _sweep(args: argparse.Namespace) -> int:
    from robocell.train.config import load_config
    from robocell.train.sweep.space import check_space, load_space
    from robocell.train.sweep.tuner import SweepRequest, run_sweep

    config = load_config(args.config, args.overrides)
    if config.eval_freq == 0:
        raise RobocellError(
            "eval_freq: a sweep stops and ranks trials on periodic evaluations; set eval_freq > 0"
        )
    space_path, space = load_space(args.space)
    check_space(space, config)
    default = f"sweeps/{Path(args.config).stem}-{space_path.stem}"
    root = Path(args.sweep_dir or default)
    command = shlex.join(["robocell", *sys.argv[1:]])
    request = SweepRequest(config, space, args.trials, args.seeds, root, command)
    options = options_from_args(args)
    print(
        f"sweep: {root} ({args.trials} trials x {args.seeds} seed(s))   "
        f"(TensorBoard: robocell tb {root / 'trials'})",
        flush=True,
    )
    rows = run_sweep(request, options)
    for row in rows[:5]:
        print(f"{row['trial']:>12s} {row['status']:14s} score {row['score']}  {row['params']}")
    if (root / "best_config.yaml").exists():
        print(f"best config: {root / 'best_config.yaml'}")
    print(f"results: {root / 'results.md'}")
    return 0
