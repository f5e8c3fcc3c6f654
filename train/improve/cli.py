"""``robocell improve`` (the champion/challenger loop) and ``robocell registry show``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from robocell.cli_helpers import count
from robocell.errors import RobocellError
from robocell.executor import add_executor_arguments, options_from_args
from robocell.train.improve.policy_registry import PolicyRegistry

DEFAULT_REGISTRY = "registry"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``improve`` and ``registry`` to the CLI."""
    improve = subparsers.add_parser(
        "improve",
        help="self-improvement loop: train challengers from the champion, promote only "
        "statistically better ones",
    )
    improve.add_argument("config", help="training config, e.g. configs/weld_ppo.yaml")
    improve.add_argument(
        "--rounds",
        type=count(0),
        required=True,
        help="challenger rounds after round 0 (the first champion); run again with more to extend",
    )
    improve.add_argument(
        "--steps-per-round",
        type=count(1),
        help="training steps of each challenger (default: the config's improve.steps_per_round)",
    )
    improve.add_argument(
        "--registry",
        default=DEFAULT_REGISTRY,
        help=f"registry directory (default {DEFAULT_REGISTRY})",
    )
    improve.add_argument(
        "--from-run", metavar="RUN_DIR", help="adopt a trained run as the first champion"
    )
    improve.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. improve.alpha=0.01 (repeatable)",
    )
    improve.add_argument("--quiet", action="store_true", help="no progress bars")
    improve.add_argument(
        "--challengers",
        type=count(1),
        default=1,
        help="challengers trained in parallel per round (Bonferroni-corrected; default 1)",
    )
    add_executor_arguments(improve)
    improve.set_defaults(func=_improve)

    registry = subparsers.add_parser("registry", help="inspect the policy registry of improve")
    actions = registry.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    show = actions.add_parser("show", help="versions, lineage, decisions and the champion bundle")
    show.add_argument(
        "--registry",
        default=DEFAULT_REGISTRY,
        help=f"registry directory (default {DEFAULT_REGISTRY})",
    )
    show.add_argument("--json", action="store_true", help="print the index as JSON")
    show.add_argument(
        "--champion-bundle", action="store_true", help="print only the champion bundle's path"
    )
    show.set_defaults(func=_show)


def _improve(args: argparse.Namespace) -> int:
    from robocell.train.config import load_config
    from robocell.train.improve.loop import ImproveRequest, resolve_improve, run_improve

    config = resolve_improve(load_config(args.config, args.overrides), args.steps_per_round)
    request = ImproveRequest(
        config,
        args.rounds,
        Path(args.registry),
        shlex.join(["robocell", *sys.argv[1:]]),
        Path(args.from_run) if args.from_run else None,
        progress=not args.quiet,
        challengers=args.challengers,
        executor=options_from_args(args, workers=args.challengers),
    )
    print(
        f"registry: {args.registry}   (TensorBoard: robocell tb {args.registry}/tb "
        f"{args.registry}/runs)",
        flush=True,
    )
    result = run_improve(request, log=lambda line: print(line, flush=True))
    if result.interrupted_round is not None:
        print(
            f"interrupted in round {result.interrupted_round}; run the same command again "
            "to redo it",
            file=sys.stderr,
        )
        return 130
    if not result.finished_rounds:
        print(f"nothing to do: round {args.rounds} is already finished")
    print(f"champion: {result.champion}   (robocell registry show --registry {args.registry})")
    return 0


def _show(args: argparse.Namespace) -> int:
    registry = PolicyRegistry.open(args.registry)
    if args.json:
        print(json.dumps(registry.index, indent=2, sort_keys=True))
        return 0
    champion = registry.champion
    if args.champion_bundle:
        if champion is None or champion.get("bundle") is None:
            raise RobocellError(f"{args.registry}: no champion yet")
        print(registry.resolve(champion["bundle"]))
        return 0
    print("\n".join(describe(registry)))
    return 0


def describe(registry: PolicyRegistry) -> list[str]:
    """Human-readable lines: setup, champion and lineage, one row per version, reasons."""
    index = registry.index
    setup = index["setup"]
    done = index["next_round"]
    progress = "no round finished" if done == 0 else f"rounds 0-{done - 1} finished"
    if done == 1:
        progress = "round 0 finished"
    lines = [f"registry {registry.root}: {setup['env_id']} ({setup['algo']}), {progress}"]
    if index.get("in_progress"):
        lines.append(
            f"round {index['in_progress']['round']} is running or was interrupted "
            "(running improve again redoes it)"
        )
    champion = registry.champion
    if champion is not None:
        bundle = registry.resolve(champion["bundle"]) if champion.get("bundle") else "-"
        lines.append(
            f"champion: {champion['id']} (round {champion['round']}), bundle {bundle}, "
            f"onnx sha256 {champion.get('onnx_sha256') or '-'}"
        )
        lines.append("lineage: " + " -> ".join(registry.lineage(champion["id"])))
    lines.append(
        f"{'version':8s} {'round':>5s} {'parent':>7s} {'decision':>9s} "
        f"{'success':>8s} {'energy_j':>10s} {'cycle_s':>8s}  config digest"
    )
    for entry in registry.versions:
        figures = entry["validation"]
        lines.append(
            f"{entry['id']:8s} {entry['round']:5d} {entry['parent'] or '-':>7s} "
            f"{entry['decision']:>9s} {100 * figures['success_rate']:7.0f}% "
            f"{_mean(figures, 'energy_j'):>10s} {_mean(figures, 'cycle_time_s'):>8s}  "
            f"{entry['config_digest'][:12]}"
        )
    lines += [f"{entry['id']}: {entry['reason']}" for entry in registry.versions]
    return lines


def _mean(figures: dict[str, float], name: str) -> str:
    value = figures.get(f"mean/{name}")
    return "-" if value is None else f"{value:.4g}"
