"""The ``robocell`` command line.

Each subpackage contributes its commands through a module with a ``register(subparsers)``
function; this module only assembles them and turns :class:`RobocellError` into a one-line
message and a non-zero exit code. Heavy imports (torch, SB3) happen inside the handlers, so
``robocell --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from robocell import __version__
from robocell.errors import RobocellError

COMMAND_MODULES = (
    "robocell.envs.cli",
    "robocell.eval.cli",
    "robocell.eval.release.cli",
    "robocell.train.cli",
    "robocell.agents.cli",
    "robocell.train.improve.cli",
    "robocell.train.sweep.cli",
    "robocell.line.telemetry.cli",
    "robocell.line.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered command."""
    parser = argparse.ArgumentParser(
        prog="robocell",
        description="Reinforcement learning for industrial robot cells.",
    )
    parser.add_argument("--version", action="version", version=f"robocell {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``robocell`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except RobocellError as exc:
        print(f"robocell {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"robocell {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
