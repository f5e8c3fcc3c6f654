"""docs/examples/control_cycle.py, the control cycle of docs/DEPLOYMENT.md, runs on the shipped
vector bundles, and a failed sensor gives the fault and the cell's safe action."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "control_cycle.py"


def _run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("name", ["weld", "peg"])
def test_the_control_cycle_example_runs(name: str) -> None:
    out = _run(str(ROOT / "models" / name))
    assert "FAULT" not in out
    assert out.count(" = ") == {"weld": 4, "peg": 3}[name]


def test_a_failed_sensor_gives_the_fault_and_the_safe_action() -> None:
    out = _run(str(ROOT / "models" / "weld"), "--fail", "sensor_standoff")
    assert "FAULT" in out
    assert "travel_velocity = 0 mm/s" in out and "arc_on = -1 1" in out
