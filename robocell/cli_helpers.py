"""Argument types and output lines that several ``robocell`` commands share."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping


def count(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``minimum`` (a clear message otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text}")
        return value

    return parse


positive_int = count(1)


def episode_line(seed: int, metrics: Mapping[str, float]) -> str:
    """One episode's figures on one line (reward sums left out): ``seed S: key=value …``."""
    figures = " ".join(f"{k}={v:.3g}" for k, v in metrics.items() if not k.startswith("return/"))
    return f"seed {seed}: {figures}"


def print_summary(summary: Mapping[str, object], as_json: bool) -> None:
    """Print a summary as one JSON line, or as one aligned ``key value`` line per entry."""
    if as_json:
        print(json.dumps(dict(summary), sort_keys=True))
        return
    for key, value in summary.items():
        print(f"{key:32s} {value}")
