"""``robocell export-baseline`` (scripted controller → bundle), ``guard`` and ``rollout``.

``rollout`` runs a bundle in its cell with onnxruntime and numpy only: nothing here or in what
it calls imports torch or stable-baselines3. ``robocell export`` (run → bundle) is a training
command (:mod:`robocell.train.cli`).
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

from robocell.cli_helpers import episode_line, positive_int, print_summary
from robocell.errors import RobocellError

VIDEO_SUFFIXES = (".gif", ".mp4")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``export-baseline``, ``guard`` and ``rollout`` to the CLI."""
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

    guard = subparsers.add_parser(
        "guard", help="give an existing bundle the input guard (fault output), no retraining"
    )
    guard.add_argument("bundle", help="bundle directory to read")
    guard.add_argument(
        "-o", "--output", required=True, metavar="BUNDLE_DIR", help="bundle directory to write"
    )
    guard.add_argument("--force", action="store_true", help="replace an existing bundle")
    guard.set_defaults(func=_guard)

    rollout = subparsers.add_parser(
        "rollout", help="run a bundle in its cell (onnxruntime only) and print the figures"
    )
    rollout.add_argument("bundle", help="bundle directory")
    rollout.add_argument(
        "--episodes", type=positive_int, default=10, metavar="N", help="episodes to run"
    )
    rollout.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the first episode"
    )
    rollout.add_argument("--video", type=Path, metavar="OUT.gif|mp4", help="film the first episode")
    rollout.add_argument("--json", action="store_true", help="end with a JSON summary line")
    rollout.set_defaults(func=_rollout)


def _export_baseline(args: argparse.Namespace) -> int:
    from robocell.agents.bundle import load_bundle
    from robocell.agents.scripted import export_scripted

    bundle = load_bundle(export_scripted(args.env_id, args.output, overwrite=args.force))
    print(f"wrote {args.output}")
    print(f"  policy.onnx    sha256 {bundle.onnx_sha256}")
    print(f"  manifest.json  sha256 {bundle.manifest_sha256}")
    return 0


def _guard(args: argparse.Namespace) -> int:
    from robocell.agents.bundle import load_bundle
    from robocell.agents.bundle.reguard import guard_bundle

    if Path(args.output).resolve() == Path(args.bundle).resolve() and not args.force:
        raise RobocellError(f"{args.output}: is the source bundle (pass --force to rewrite it)")
    guard_bundle(args.bundle, args.output, overwrite=args.force)
    bundle = load_bundle(args.output)
    print(f"wrote {args.output}")
    print(f"  policy.onnx    sha256 {bundle.onnx_sha256}")
    print(f"  manifest.json  sha256 {bundle.manifest_sha256}")
    return 0


def _rollout(args: argparse.Namespace) -> int:
    from robocell.agents.bundle import load_bundle
    from robocell.envs.rollout import episode_seeds, run_episode, summarize

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
            print(episode_line(seed, metrics))
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


class _Camera:
    """Wraps a policy: grabs a frame before every action, then writes the video."""

    def __init__(self, env: Any, policy: Any) -> None:
        self.env = env
        self.policy = policy
        self.frames: list[Any] = []

    def __call__(self, obs: Any) -> Any:
        self.frames.append(self.env.render())
        return self.policy(obs)

    def reset(self) -> None:
        self.policy.reset()

    def episode_counts(self) -> dict[str, float]:
        """The bundle's fault and clip counts, which the filmed episode reports like any."""
        return self.policy.episode_counts()

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
