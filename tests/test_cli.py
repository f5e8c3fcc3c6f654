"""The robocell command line: help, version, envs, baseline and bad arguments."""

from __future__ import annotations

import json
import subprocess
import sys

from robocell import __version__
from robocell.cli import build_parser
from robocell.envs import ENV_IDS


def robocell(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "robocell", *args], capture_output=True, text=True, timeout=600
    )


def test_help_lists_every_command_with_a_line_of_help() -> None:
    result = robocell("--help")
    assert result.returncode == 0
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    for action in subparsers._choices_actions:
        assert action.help, f"command {action.dest} has no help line"
        assert action.dest in result.stdout


def test_version() -> None:
    result = robocell("--version")
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_envs_lists_every_registered_cell() -> None:
    result = robocell("envs")
    assert result.returncode == 0
    for env_id in ENV_IDS:
        assert env_id in result.stdout


def test_baseline_json_summary_is_the_last_line() -> None:
    result = robocell(
        "baseline", "robocell/WeldSeam-v1", "--episodes", "2", "--seed", "5", "--json"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["episodes"] == 2
    assert 0.0 <= summary["success_rate"] <= 1.0
    for figure in ("energy_j", "cycle_time_s", "seam_coverage", "defect_length_mm"):
        assert f"mean/{figure}" in summary


def test_unknown_cell_is_a_clear_error_without_traceback() -> None:
    result = robocell("baseline", "robocell/Nope-v0")
    assert result.returncode == 2
    assert "unknown cell 'robocell/Nope-v0'" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_arguments_exit_2() -> None:
    for args in (["baseline", "robocell/WeldSeam-v1", "--episodes", "0"], ["no-such-command"], []):
        result = robocell(*args)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr


def test_baseline_takes_env_kwargs_and_names_a_refused_one() -> None:
    result = robocell(
        "baseline", "robocell/MotionTransfer-v0", "--episodes", "1", "--set", "robot=panda",
        "--set", "takt_s=[8, 8]", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["env_kwargs"] == {"robot": "panda", "takt_s": [8, 8]}
    assert summary["mean/takt_s"] == 8.0
    refused = robocell("baseline", "robocell/MotionTransfer-v0", "--set", "robot=xarm6")
    assert refused.returncode == 2
    assert "env_kwargs" in refused.stderr and "6 joints" in refused.stderr
    assert "Traceback" not in refused.stderr
