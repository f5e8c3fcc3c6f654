"""``robocell cell check``: every built-in cell passes the harness, a broken cell fails it.

The broken cells below are importable as ``test_cell_check:Class`` by the command and by the
determinism check's fresh interpreter (tests/ goes on their PYTHONPATH).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_cell_plugin import robocell

from robocell.cells import EnergyMeter
from robocell.envs import CELLS, ENV_IDS
from robocell.envs.check import CellCheckError, check_determinism, resolve_cell
from robocell.envs.peg.env import PegInsertEnv
from robocell.errors import RobocellError

HERE = Path(__file__).resolve().parent
CHECKS = (
    "gymnasium env checker",
    "sb3 env checker",
    "determinism across processes",
    "info contract",
    "energy metering",
    "episode metrics",
    "scripted controller",
)


class LastStepMeter(EnergyMeter):
    """Meters an action's last physics step as if it lasted the whole action.

    The error PyBullet's ``numSubSteps`` makes: the reading of one step stands for all.
    """

    def add_steps(
        self, tau_nm: np.ndarray, qd_rad_s: np.ndarray, tool_power_w: np.ndarray, dt_s: float
    ) -> float:
        steps = len(tool_power_w)
        return super().add_steps(tau_nm[-1:], qd_rad_s[-1:], tool_power_w[-1:], dt_s * steps)


class BadlyMeteredPeg(PegInsertEnv):
    """The assembly cell with :class:`LastStepMeter`; no CellSpec names it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.meter = LastStepMeter()


class UnseededPeg(PegInsertEnv):
    """The assembly cell drawing its episodes from the clock instead of reset's seed."""

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> Any:
        return super().reset(seed=time.monotonic_ns() % 2**32, options=options)


@pytest.mark.parametrize("env_id", ENV_IDS, ids=lambda env_id: env_id)
def test_every_built_in_cell_passes_every_check(env_id: str) -> None:
    result = robocell(HERE, "cell", "check", env_id, "--episodes", "1", "--seed", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{env_id} ({CELLS[env_id].entry_point})"
    assert [line.split(":")[0] for line in lines[1:-1]] == [f"PASS  {name}" for name in CHECKS]
    assert lines[-1] == f"{len(CHECKS)}/{len(CHECKS)} checks passed"


def test_a_badly_metered_cell_fails_the_energy_check_and_exits_1() -> None:
    result = robocell(HERE, "cell", "check", "test_cell_check:BadlyMeteredPeg", "--episodes", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "check/BadlyMeteredPeg-v0 (test_cell_check:BadlyMeteredPeg)"
    results = {}
    for line in lines[1:-1]:
        verdict, check = line.split("  ", 1)
        name, _, detail = check.partition(": ")
        results[name] = (verdict, detail)
    verdict, detail = results.pop("energy metering")
    assert verdict == "FAIL" and detail.startswith("step 0: metered"), result.stdout
    assert results.pop("scripted controller") == ("FAIL", "the cell has no scripted controller")
    assert {verdict for verdict, _ in results.values()} == {"PASS"}, result.stdout
    assert lines[-1] == f"{len(CHECKS) - 2}/{len(CHECKS)} checks passed"


def test_a_cell_that_ignores_the_seed_fails_the_determinism_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)
    with pytest.raises(CellCheckError, match="differs in a fresh interpreter"):
        check_determinism("test_cell_check:UnseededPeg", seed=3, steps=20)


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("robocell/Nope-v0", "unknown cell 'robocell/Nope-v0'"),
        ("robocell_no_such_module:Env", "cannot import 'robocell_no_such_module'"),
        ("robocell.envs.peg.env:Nope", "module 'robocell.envs.peg.env' has no 'Nope'"),
        ("robocell.envs.spec:CellSpec", "is a type, not a CellEnv subclass or CellSpec"),
    ],
)
def test_bad_input_exits_2_with_one_line(cell: str, message: str) -> None:
    result = robocell(HERE, "cell", "check", cell)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_an_env_class_or_a_spec_names_its_registered_cell() -> None:
    peg = CELLS["robocell/PegInsert-v0"]
    assert resolve_cell("robocell.envs.peg.env:PegInsertEnv") is peg
    assert resolve_cell("robocell.envs.peg:CELL") is peg
    with pytest.raises(RobocellError, match="unknown cell"):
        resolve_cell("PegInsert-v0")
