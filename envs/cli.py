"""``robocell envs`` and ``robocell baseline``."""

from __future__ import annotations

import argparse

from robocell.errors import RobocellError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the cell commands to the CLI."""
    envs = subparsers.add_parser("envs", help="list the registered cells")
    envs.set_defaults(func=_list_envs)

    baseline = subparsers.add_parser(
        "baseline", help="run a cell's scripted controller and print its episode figures"
    )
    baseline.add_argument("env_id", help="registered cell, e.g. robocell/WeldSeam-v1")
    baseline.add_argument("--episodes", type=_positive_int, default=10, help="episodes to run")
    baseline.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    baseline.add_argument("--json", action="store_true", help="end with a JSON summary line")
    baseline.set_defaults(func=_run_baseline)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _list_envs(args: argparse.Namespace) -> int:
    from robocell.envs import CELLS

    for cell in CELLS.values():
        print(f"{cell.env_id:28s} {cell.summary}")
    return 0


def _run_baseline(args: argparse.Namespace) -> int:
    import gymnasium as gym

    from robocell.envs import ENV_IDS
    from robocell.envs.baselines import make_baseline
    from robocell.envs.rollout import episode_seeds, print_summary, run_episode, summarize

    if args.env_id not in ENV_IDS:
        raise RobocellError(f"unknown cell {args.env_id!r}; `robocell envs` lists them")
    env = gym.make(args.env_id)
    try:
        policy = make_baseline(args.env_id, env.unwrapped)
        episodes = []
        for seed in episode_seeds(args.seed, args.episodes):
            metrics = run_episode(env, policy, seed)
            episodes.append(metrics)
            print(_episode_line(seed, metrics))
    finally:
        env.close()
    summary = {"env_id": args.env_id, "first_seed": args.seed, **summarize(episodes)}
    print_summary(summary, args.json)
    return 0


def _episode_line(seed: int, metrics: dict[str, float]) -> str:
    figures = " ".join(f"{k}={v:.3g}" for k, v in metrics.items() if not k.startswith("return/"))
    return f"seed {seed}: {figures}"
