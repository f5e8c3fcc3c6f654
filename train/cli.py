"""``robocell train``, ``robocell eval``, ``robocell compare``, ``robocell export`` and
``robocell tb``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from robocell.cli_helpers import count, positive_int
from robocell.errors import RobocellError
from robocell.executor import add_executor_arguments, options_from_args

if TYPE_CHECKING:
    from robocell.train.trainer import TrainResult

# Held-out seeds of ``robocell eval``: apart from the periodic evaluation's (1,000,000+) and
# from the training envs' (seed + i, then their own random streams).
EVAL_FIRST_SEED = 2_000_000


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the training commands to the CLI."""
    train = subparsers.add_parser("train", help="train a policy from a YAML config")
    train.add_argument("config", nargs="?", help="training config, e.g. configs/weld_ppo.yaml")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. hyperparams.gamma=0.98 (repeatable)",
    )
    train.add_argument("--seed", type=int, help="override the config's seed")
    train.add_argument("--run-dir", help="run directory (default runs/<name>)")
    train.add_argument(
        "--resume", metavar="RUN_DIR", help="continue a run from its latest checkpoint"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument(
        "--from-bundle",
        metavar="BUNDLE",
        help="start the actor from a bundle's ONNX weights and observation statistics "
        "(fine-tune a deployed policy; the critic starts fresh)",
    )
    train.add_argument(
        "--seeds",
        metavar="SEEDS",
        help="train one run per seed (0-4, or 0,3,7) and summarise them over seeds",
    )
    train.add_argument(
        "--eval-episodes",
        type=positive_int,
        default=20,
        help="held-out episodes per seed with --seeds (default 20)",
    )
    train.add_argument(
        "--workers", type=positive_int, default=1, help="local processes with --seeds (default 1)"
    )
    add_executor_arguments(train)
    train.set_defaults(func=_train)  # fmt: skip

    evaluate = subparsers.add_parser(
        "eval", help="evaluate a run's best model: mean and 95%% CI of the figures"
    )
    evaluate.add_argument("run", help="run directory")
    evaluate.add_argument("--episodes", type=positive_int, default=20, help="episodes to run")
    evaluate.add_argument(
        "--seed",
        type=int,
        default=EVAL_FIRST_SEED,
        help=f"seed of the first episode (default {EVAL_FIRST_SEED})",
    )
    evaluate.add_argument(
        "--checkpoint", default="best", help="best, last, or a checkpoint zip inside the run"
    )
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(func=_eval)  # fmt: skip

    compare = subparsers.add_parser(
        "compare", help="trained runs or bundles against the scripted controller, paired by seed"
    )
    compare.add_argument(
        "inputs", nargs="+", metavar="RUN_OR_BUNDLE", help="run or bundle directories, one cell"
    )
    compare.add_argument(
        "--episodes",
        type=count(2),
        default=100,
        help="held-out seeds to play, at least 2 (default 100)",
    )
    compare.add_argument(
        "--seed",
        type=int,
        default=EVAL_FIRST_SEED,
        help=f"seed of the first episode (default {EVAL_FIRST_SEED})",
    )
    compare.add_argument(
        "--plant",
        dest="plant",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a plant parameter set in every contender's cell, e.g. joint_friction_nm=0.2 "
        "(a drifted plant; repeatable)",
    )
    compare.add_argument("--json", action="store_true", help="print the report as one JSON line")
    compare.add_argument(
        "-o", "--output", metavar="OUT.json", help="also write the report and every episode here"
    )
    compare.set_defaults(func=_compare)

    export = subparsers.add_parser(
        "export", help="export a training run as a controller bundle (policy.onnx + manifest)"
    )
    export.add_argument("run_dir", help="training run directory")
    export.add_argument(
        "--checkpoint",
        default="best",
        metavar="best|last|PATH",
        help="best (default), last, or a checkpoint zip inside the run",
    )
    export.add_argument(
        "-o", "--output", required=True, metavar="BUNDLE_DIR", help="bundle directory to write"
    )
    export.add_argument("--force", action="store_true", help="replace an existing bundle")
    export.add_argument(
        "--closed-loop-episodes",
        type=count(0),
        metavar="N",
        default=3,
        help="episodes replayed to compare outcomes with the model (default 3)",
    )
    export.add_argument("--json", action="store_true", help="end with a JSON report line")
    export.set_defaults(func=_export)

    tb = subparsers.add_parser("tb", help="start TensorBoard on training runs")
    tb.add_argument(
        "runs",
        nargs="*",
        default=["runs"],
        help="run directories or folders of runs (default: runs)",
    )
    tb.add_argument("--port", type=int, default=6006, help="TensorBoard port")
    tb.add_argument(
        "--print-command",
        action="store_true",
        help="print the TensorBoard command instead of starting it",
    )
    tb.set_defaults(func=_tb)  # fmt: skip


def _command_line() -> str:
    return shlex.join(["robocell", *sys.argv[1:]])


def _train(args: argparse.Namespace) -> int:
    from robocell.train.config import load_config
    from robocell.train.trainer import check_resumable, default_run_dir, resume_run, start_run

    if args.resume:
        given = args.config or args.overrides or args.run_dir or args.seeds or args.from_bundle
        if given or args.seed is not None:
            raise RobocellError(
                "--resume continues a run with its own config; "
                "give no CONFIG, --set, --seed, --seeds, --run-dir or --from-bundle with it"
            )
        check_resumable(args.resume)
        result = resume_run(args.resume, _command_line(), progress=not args.quiet)
    else:
        if not args.config:
            raise RobocellError("give a CONFIG file (or --resume RUN_DIR)")
        if args.seeds is not None:
            if args.from_bundle:
                raise RobocellError("--from-bundle trains one run; give no --seeds with it")
            return _train_seeds(args)
        config = load_config(args.config, args.overrides, args.seed)
        run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(config)
        print(f"run directory: {run_dir}   (TensorBoard: robocell tb {run_dir})", flush=True)
        if args.from_bundle:
            from robocell.train.improve.warm_start import start_run_from_bundle

            result = start_run_from_bundle(config, run_dir, _command_line(), args.from_bundle,
                                           progress=not args.quiet)  # fmt: skip
        else:
            result = start_run(config, run_dir, _command_line(), progress=not args.quiet)
    return _report(result)


def _train_seeds(args: argparse.Namespace) -> int:
    from robocell.train.config import load_config
    from robocell.train.multiseed import SeedGroup, default_group_dir, parse_seeds, train_seeds

    if args.seed is not None:
        raise RobocellError("give --seed or --seeds, not both")
    seeds = parse_seeds(args.seeds)
    config = load_config(args.config, args.overrides, seeds[0])
    root = Path(args.run_dir) if args.run_dir else default_group_dir(config, seeds)
    group = SeedGroup(config, seeds, root, _command_line(), EVAL_FIRST_SEED, args.eval_episodes)
    options = options_from_args(args, args.workers)
    print(f"seed group: {root} ({len(seeds)} runs on {options.backend})   "
          f"(TensorBoard: robocell tb {root})", flush=True)  # fmt: skip
    try:
        summary = train_seeds(group, options, log=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print(f"interrupted; run the same command again to continue {root}", file=sys.stderr)
        return 130
    for key in ("success", "energy_j", "cycle_time_s", "return"):
        row = summary["figures"].get(key)
        if row is not None:
            print(f"{key:14s} IQM {row['iqm']:.4g}  95% CI [{row['ci_low']:.4g}, "
                  f"{row['ci_high']:.4g}] over seeds {seeds[0]}…{seeds[-1]}")  # fmt: skip
    print(f"summary: {root / 'summary.md'}")
    return 0


def _report(result: TrainResult) -> int:
    run_dir, steps = result.run_dir, result.timesteps
    if result.interrupted:
        print(f"interrupted at step {steps}; checkpoint saved. "
              f"Continue with: robocell train --resume {run_dir}", file=sys.stderr)  # fmt: skip
        return 130
    best = result.best_score
    summary = f"done: {steps} steps in {result.wall_s:.0f} s"
    if best is not None:
        summary += f"; best evaluation: success {100 * best[0]:.0f}%, return {best[1]:.2f}"
    print(summary)
    print(f"run directory: {run_dir}\nTensorBoard logs: {run_dir / 'tb'}  (robocell tb {run_dir})")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from robocell.train.evaluate import evaluate_run, figure_table

    run, episodes = evaluate_run(args.run, args.checkpoint, args.seed, args.episodes)
    table = figure_table(episodes)
    if args.json:
        print(
            json.dumps(
                {
                    "run": str(args.run),
                    "checkpoint": str(run.checkpoint_path),
                    "first_seed": args.seed,
                    "figures": table,
                },
                sort_keys=True,
            )
        )
        return 0  # fmt: skip
    print(f"{run.run_id}: {run.checkpoint_path} on {args.episodes} episodes from seed {args.seed}")
    print(f"{'figure':32s} {'mean':>12s} {'95% CI':>27s}")
    for key, row in table.items():
        ci = f"[{row['ci_low']:.4g}, {row['ci_high']:.4g}]"
        print(f"{key:32s} {row['mean']:12.4g} {ci:>27s}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from robocell.train.compare import run_compare
    from robocell.util import parse_override

    plant = dict(parse_override(item, "--plant") for item in args.plant)
    return run_compare(args.inputs, args.episodes, args.seed, args.json, args.output, plant)


def _export(args: argparse.Namespace) -> int:
    from robocell.train.export import export_run

    report = export_run(
        args.run_dir,
        args.output,
        args.checkpoint,
        overwrite=args.force,
        closed_loop_episodes=args.closed_loop_episodes,
    )
    print(f"wrote {report.bundle_dir}")
    print(f"  policy.onnx    sha256 {report.onnx_sha256}")
    print(f"  manifest.json  sha256 {report.manifest_sha256}")
    print(
        f"  parity: {report.parity_observations} recorded observations + "
        f"{report.boundary_cases} boundary cases, max |Δa| = {report.max_abs_diff:.3g} "
        f"({100 * report.worst_ratio:.2g} % of the allowed 1e-5 + 1e-3·|a|)"
        + (f", {report.argmax_ties} arg-max ties" if report.argmax_ties else "")
    )
    seeds = ", ".join(str(int(row["seed"])) for row in report.closed_loop)
    print(
        f"  closed loop: {report.closed_loop_matches}/{len(report.closed_loop)} episodes with "
        f"the model's outcome (seeds {seeds or 'none'})"
    )
    for note in report.notes:
        print(f"note: {note}")
    if args.json:
        row = {
            key: getattr(report, key)
            for key in (
                "onnx_sha256",
                "manifest_sha256",
                "parity_observations",
                "boundary_cases",
                "max_abs_diff",
                "worst_ratio",
            )
        }
        print(json.dumps({"bundle": str(report.bundle_dir), **row}, sort_keys=True))
    return 0


def _tb(args: argparse.Namespace) -> int:
    import shutil
    import subprocess

    spec, links = _logdir_spec(args.runs)
    command = [sys.executable, "-m", "tensorboard.main", "--logdir_spec", spec,
               "--port", str(args.port)]  # fmt: skip
    if args.print_command:
        print(shlex.join(command))
        if links is not None:
            print(f"(paths holding ',' are given through links in {links})", file=sys.stderr)
        return 0
    try:
        return subprocess.call(command)
    finally:
        if links is not None:
            shutil.rmtree(links, ignore_errors=True)


def _logdir_spec(runs: list[str]) -> tuple[str, Path | None]:
    """``name:path`` pairs: a run directory's ``tb/``, or a folder holding runs.

    TensorBoard splits the spec at every ``,`` and a pair at its first ``:``. A name holding
    either has them replaced by ``_``; a path holding ``,`` is given through a symbolic link
    in a temporary directory, returned second (None when no link was needed), which
    TensorBoard resolves to the real path.
    """
    import tempfile

    parts, links = [], None
    for index, item in enumerate(runs):
        path = Path(item)
        if not path.is_dir():
            raise RobocellError(f"{item}: no such directory")
        logdir = path / "tb" if (path / "tb").is_dir() else path
        if "," in str(logdir):
            links = links or Path(tempfile.mkdtemp(prefix="robocell-tb-"))
            link = links / str(index)
            link.symlink_to(logdir.resolve(), target_is_directory=True)
            logdir = link
        name = path.resolve().name.replace(",", "_").replace(":", "_")
        parts.append(f"{name}:{logdir}")
    return ",".join(parts), links
