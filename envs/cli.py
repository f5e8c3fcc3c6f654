"""``robocell envs``, ``robocell baseline`` and ``robocell cell check``."""

from __future__ import annotations

import argparse

from robocell.cli_helpers import episode_line, positive_int, print_summary
from robocell.errors import RobocellError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the cell commands to the CLI."""
    envs = subparsers.add_parser("envs", help="list the registered cells")
    envs.set_defaults(func=_list_envs)

    baseline = subparsers.add_parser(
        "baseline", help="run a cell's scripted controller and print its episode figures"
    )
    baseline.add_argument("env_id", help="registered cell, e.g. robocell/WeldSeam-v1")
    baseline.add_argument("--episodes", type=positive_int, default=10, help="episodes to run")
    baseline.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    baseline.add_argument(
        "--set",
        dest="env_kwargs",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an env kwarg of the cell, e.g. robot=panda or colour_jitter=0.2 (repeatable)",
    )
    baseline.add_argument("--json", action="store_true", help="end with a JSON summary line")
    baseline.set_defaults(func=_run_baseline)

    cell = subparsers.add_parser("cell", help="check a cell (your own too) against the harness")
    cell_sub = cell.add_subparsers(dest="cell_command", metavar="ACTION", required=True)
    check = cell_sub.add_parser(
        "check", help="run the checks every built-in cell passes; exit 1 if one fails"
    )
    check.add_argument(
        "cell", help="registered env id, module:Class of a CellEnv or module:NAME of a CellSpec"
    )
    check.add_argument("--episodes", type=positive_int, default=2, help="episodes per check")
    check.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    check.set_defaults(func=_check_cell)


def _list_envs(args: argparse.Namespace) -> int:
    from robocell.envs import CELLS, discover_cells

    for cell in CELLS.values():
        print(f"{cell.env_id:28s} {cell.summary}")
    for entry_point, reason in discover_cells().items():
        print(f"{entry_point:28s} FAILED to load: {reason}")
    return 0


def _check_cell(args: argparse.Namespace) -> int:
    from robocell.envs.check import check_cell, resolve_cell

    spec = resolve_cell(args.cell)
    print(f"{spec.env_id} ({spec.entry_point})")
    results = check_cell(args.cell, args.episodes, args.seed)
    for result in results:
        verdict = "PASS" if result.passed else "FAIL"
        print(f"{verdict}  {result.name}" + (f": {result.detail}" if result.detail else ""))
    passed = sum(result.passed for result in results)
    print(f"{passed}/{len(results)} checks passed")
    return 0 if passed == len(results) else 1


def _run_baseline(args: argparse.Namespace) -> int:
    from robocell.envs import ENV_IDS
    from robocell.envs.make import make_cell, make_controller
    from robocell.envs.rollout import episode_seeds, run_episode, summarize
    from robocell.util import parse_override

    if args.env_id not in ENV_IDS:
        raise RobocellError(f"unknown cell {args.env_id!r}; `robocell envs` lists them")
    env_kwargs = dict(parse_override(item) for item in args.env_kwargs)
    env = make_cell(args.env_id, env_kwargs)
    try:
        policy = make_controller(args.env_id, env.unwrapped)
        episodes = []
        for seed in episode_seeds(args.seed, args.episodes):
            metrics = run_episode(env, policy, seed)
            episodes.append(metrics)
            print(episode_line(seed, metrics))
    finally:
        env.close()
    summary = {
        "env_id": args.env_id,
        "env_kwargs": env_kwargs,
        "first_seed": args.seed,
        **summarize(episodes),
    }
    print_summary(summary, args.json)
    return 0
