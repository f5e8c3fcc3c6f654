"""``robocell export`` (run → controller bundle) and ``robocell rollout`` (bundle → cell).

``rollout`` runs a bundle with onnxruntime and numpy only: nothing here or in what it calls
imports torch or stable-baselines3.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
from typing import Any

from robocell.errors import RobocellError

VIDEO_SUFFIXES = (".gif", ".mp4")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``export``, ``export-baseline`` and ``rollout`` to the CLI."""
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
        type=_count(0),
        metavar="N",
        default=3,
        help="episodes replayed to compare outcomes with the model (default 3)",
    )
    export.add_argument("--json", action="store_true", help="end with a JSON report line")
    export.set_defaults(func=_export)

    baseline = subparsers.add_parser(
        "export-baseline",
        help="write a cell's scripted controller as a bundle (the reference to certify)",
    )
    baseline.add_argument("env_id", help="cell whose scripted controller to write")
    baseline.add_argument(
        "-o", "--output", required=True, metavar="BUNDLE_DIR", help="bundle directory to write"
    )
    baseline.add_argument("--force", action="store_true", help="replace an existing bundle")
    baseline.set_defaults(func=_export_baseline)

    rollout = subparsers.add_parser(
        "rollout", help="run a bundle in its cell (onnxruntime only) and print the figures"
    )
    rollout.add_argument("bundle", help="bundle directory")
    rollout.add_argument(
        "--episodes", type=_count(1), default=10, metavar="N", help="episodes to run"
    )
    rollout.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the first episode"
    )
    rollout.add_argument("--video", type=Path, metavar="OUT.gif|mp4", help="film the first episode")
    rollout.add_argument("--json", action="store_true", help="end with a JSON summary line")
    rollout.set_defaults(func=_rollout)


def _count(minimum: int) -> Any:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text}")
        return value

    return parse


def _export(args: argparse.Namespace) -> int:
    from robocell.agents.export import export_run

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


def _export_baseline(args: argparse.Namespace) -> int:
    from robocell.agents.export import load_bundle
    from robocell.agents.scripted import export_scripted

    bundle = load_bundle(export_scripted(args.env_id, args.output, overwrite=args.force))
    print(f"wrote {args.output}")
    print(f"  policy.onnx    sha256 {bundle.onnx_sha256}")
    print(f"  manifest.json  sha256 {bundle.manifest_sha256}")
    return 0


def _rollout(args: argparse.Namespace) -> int:
    from robocell.agents.export import load_bundle
    from robocell.envs.rollout import episode_seeds, print_summary, run_episode, summarize

    if args.video is not None:
        _check_video_path(args.video)
    policy = load_bundle(args.bundle)
    env = policy.make_env(render_mode="rgb_array" if args.video else None)
    episodes = []
    try:
        for index, seed in enumerate(episode_seeds(args.seed, args.episodes)):
            camera = _Camera(env, policy) if args.video and index == 0 else None
            metrics = run_episode(env, camera or policy, seed)
            if camera is not None:
                camera.save(args.video, policy.control_period_s)
            episodes.append(metrics)
            print(_episode_line(seed, metrics))
    finally:
        env.close()
    summary = {
        "bundle": str(args.bundle),
        "env_id": policy.env_id,
        "onnx_sha256": policy.onnx_sha256,
        "first_seed": args.seed,
        **summarize(episodes),
    }
    print_summary(summary, args.json)
    return 0


def _check_video_path(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise RobocellError(f"--video {path}: use a .gif or .mp4 file name")
    if suffix == ".mp4" and not any(importlib.util.find_spec(m) for m in ("av", "imageio_ffmpeg")):
        raise RobocellError(
            "--video: writing .mp4 needs the 'av' or 'imageio-ffmpeg' package; "
            "install one, or use a .gif"
        )


def _episode_line(seed: int, metrics: dict[str, float]) -> str:
    figures = " ".join(f"{k}={v:.3g}" for k, v in metrics.items() if not k.startswith("return/"))
    return f"seed {seed}: {figures}"


class _Camera:
    """Wraps a policy: grabs a frame before every action, then writes the video."""

    def __init__(self, env: Any, policy: Any) -> None:
        self.env = env
        self.policy = policy
        self.frames: list[Any] = []

    def __call__(self, obs: Any) -> Any:
        self.frames.append(self.env.render())
        return self.policy(obs)

    def save(self, path: Path, period_s: float | None) -> None:
        import imageio.v3 as iio

        from robocell.util import atomic_write_bytes

        self.frames.append(self.env.render())  # the state the episode ended in
        period_s = period_s or 0.1
        if path.suffix.lower() == ".mp4":
            data = iio.imwrite("<bytes>", self.frames, extension=".mp4", fps=1.0 / period_s)
        else:
            data = iio.imwrite(
                "<bytes>", self.frames, extension=".gif", duration=1000.0 * period_s, loop=0
            )
        atomic_write_bytes(path, data, mode=0o644)
        print(f"wrote {path} ({len(self.frames)} frames)")
