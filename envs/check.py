"""The harness every cell passes, built-in or plug-in: ``robocell cell check`` runs it.

:func:`check_cell` runs every check on one cell; tests/test_envs.py and tests/test_energy.py
call the same checks on each registered cell. Each check makes its envs with
:func:`robocell.envs.make.make_cell`, as training, export and certification do, and raises
:class:`CellCheckError` saying what broke:

- the Gymnasium and stable-baselines3 env checkers;
- determinism: a seed gives bitwise the same episodes here and in a fresh interpreter (a
  random rollout, and the scripted controller's contact-rich episode); another seed does not;
- the info contract: every step of an episode reports each reward term by name (summing to the
  reward), ``energy_j`` and its energy term, ``is_success`` and the quality figures; the last
  step's ``episode_metrics`` add the steps up;
- energy: the meter equals a reference that reads the joints after every physics step;
- episode metrics: every episode ends with the whole set;
- the scripted controller: it plays its episodes without a fault.

``python -m robocell.envs.check CELL SEED STEPS`` prints a cell's digests: the fresh
interpreter's half of the determinism check.
"""

from __future__ import annotations

import importlib
import math
import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from contextlib import closing
from typing import Any, NamedTuple

import gymnasium as gym

import robocell.envs
from robocell.envs import error_line
from robocell.envs.core import CellEnv
from robocell.envs.digest import cell_digests, rollout_digest
from robocell.envs.energy import drive_power_w
from robocell.envs.make import make_cell, make_controller
from robocell.envs.rollout import episode_seeds, run_episode
from robocell.envs.spec import CellSpec
from robocell.errors import RobocellError

# Random steps the determinism check compares at most (fewer for cells with short episodes).
DETERMINISM_STEPS = 200
# Figures every episode's episode_metrics holds, besides return/<term> and the cell's own.
EPISODE_METRICS = ("success", "energy_j", "cycle_time_s", "episode_steps")
# Gymnasium's logger colours its warnings for a terminal.
_ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


class CellCheckError(AssertionError):
    """A cell broke the harness's contract; the message says where and how."""


class CheckResult(NamedTuple):
    """The outcome of one check: its name, whether it passed, why not or what it found."""

    name: str
    passed: bool
    detail: str


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise CellCheckError(message)


# ---------------------------------------------------------------------- the cell to check
def resolve_cell(cell: str) -> CellSpec:
    """The registered cell that ``cell`` names, registering it here if need be.

    ``cell`` is an env id, ``module:NAME`` of a :class:`CellSpec`, or ``module:Class`` of a
    :class:`CellEnv` subclass: the cell whose spec names that class, or else, for a class no
    spec names, ``check/<Class>-v0`` without a scripted controller. Anything else is a
    RobocellError.
    """
    cells = robocell.envs.CELLS
    if cell in cells:
        return cells[cell]
    if ":" not in cell:
        raise RobocellError(f"unknown cell {cell!r}: neither a registered env id nor module:Class")
    target = _import(cell)
    if isinstance(target, CellSpec):
        robocell.envs.register_cell(target)
        return target
    if isinstance(target, type) and issubclass(target, CellEnv):
        return _class_cell(cell, target)
    raise RobocellError(f"{cell} is a {type(target).__name__}, not a CellEnv subclass or CellSpec")


def _import(cell: str) -> object:
    module_name, _, name = cell.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # whatever the module raises on import: it cannot be checked
        raise RobocellError(f"cannot import {module_name!r}: {error_line(exc)}") from None
    if not hasattr(module, name):
        raise RobocellError(f"module {module_name!r} has no {name!r}")
    return getattr(module, name)


def _class_cell(cell: str, env_class: type[CellEnv]) -> CellSpec:
    names = {cell, f"{env_class.__module__}:{env_class.__qualname__}"}
    for spec in robocell.envs.CELLS.values():
        if spec.entry_point in names:
            return spec
    try:
        with closing(env_class()) as env:
            max_steps = env.max_steps
    except Exception as exc:  # the class cannot be built with its defaults
        raise RobocellError(f"cannot build {cell}(): {error_line(exc)}") from None
    # Unregistered, it has no reward threshold: no return counts as solved.
    spec = CellSpec(f"check/{env_class.__name__}-v0", cell, max_steps, math.inf, cell, "")
    robocell.envs.register_cell(spec)
    return spec


# ---------------------------------------------------------------------- the checks
def check_gymnasium_api(env_id: str) -> None:
    """Gymnasium's ``check_env`` on the unwrapped cell, made without a render mode."""
    from gymnasium.utils.env_checker import check_env

    with closing(make_cell(env_id)) as env:
        check_env(env.unwrapped, skip_render_check=True)


def check_sb3_api(env_id: str) -> None:
    """stable-baselines3's ``check_env`` on the cell as training makes it."""
    from stable_baselines3.common.env_checker import check_env

    with closing(make_cell(env_id)) as env:
        check_env(env, warn=True)


def check_determinism(cell: str, seed: int = 11, steps: int = DETERMINISM_STEPS) -> None:
    """A seed gives the same episodes here and in a fresh interpreter; the next seed does not.

    ``cell`` is anything :func:`resolve_cell` takes: the fresh interpreter resolves it again.
    """
    env_id = resolve_cell(cell).env_id
    here = cell_digests(env_id, seed, steps)
    command = [sys.executable, "-m", "robocell.envs.check", cell, str(seed), str(steps)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        error = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise CellCheckError(f"the fresh interpreter failed: {error}")
    there = result.stdout.split()
    _require(len(there) == len(here), f"the fresh interpreter printed {there}, not digests")
    kinds = ["random rollout", "scripted episode"]
    for kind, ours, theirs in zip(kinds, here, there, strict=False):
        _require(ours == theirs, f"seed {seed}: the {kind} differs in a fresh interpreter")
    _require(
        rollout_digest(env_id, seed + 1, steps) != here[0],
        f"seeds {seed} and {seed + 1} give the same rollout: reset(seed=...) is not used",
    )


def check_info_contract(env_id: str, seed: int = 5) -> None:
    """One random-action episode: every step's ``info``, then the ``episode_metrics`` sums."""
    with closing(make_cell(env_id)) as env:
        cell = env.unwrapped
        env.action_space.seed(seed)
        env.reset(seed=seed)
        total_energy_j, steps, over = 0.0, 0, False
        while not over:
            _, reward, terminated, truncated, info = env.step(env.action_space.sample())
            _check_step_info(cell, float(reward), info, steps)
            total_energy_j += info["energy_j"]
            steps += 1
            over = terminated or truncated
        metrics = _episode_metrics(cell, info, f"seed {seed}")
        for name, value, expected in (
            ("energy_j", metrics["energy_j"], total_energy_j),
            ("cycle_time_s", metrics["cycle_time_s"], steps * cell.task.control_period_s),
            ("success", metrics["success"], float(info["is_success"])),
        ):
            _require(
                _close(value, expected),
                f"episode_metrics[{name!r}] is {value}, the steps add up to {expected}",
            )


def _check_step_info(cell: CellEnv, reward: float, info: dict[str, Any], step: int) -> None:
    where = f"step {step}: info"
    _require("fault" not in info, f"{where} reports fault {info.get('fault')!r}")
    terms = {k: v for k, v in info.items() if k.startswith("reward/")}
    expected = {f"reward/{name}" for name in (*cell.task.reward_term_names, "energy")}
    _require(set(terms) == expected, f"{where} has {sorted(terms)}, not {sorted(expected)}")
    total = sum(terms.values())
    _require(_close(reward, total, 0.0, 1e-9), f"{where}: reward {reward} ≠ Σ terms {total}")
    energy_j = info.get("energy_j")
    _require(isinstance(energy_j, float) and energy_j > 0.0, f"{where}['energy_j'] not > 0 J")
    weighted = -cell.energy_weight * energy_j
    _require(_close(terms["reward/energy"], weighted), f"{where}: reward/energy ≠ −λ·energy_j")
    _require(isinstance(info.get("is_success"), bool), f"{where}['is_success'] is not a bool")
    for name, value in cell.task.step_figures().items():
        _require(info.get(name) == value, f"{where}[{name!r}] is not the task's figure {value}")


def _episode_metrics(cell: CellEnv, info: dict[str, Any], where: str) -> dict[str, float]:
    """The last step's ``episode_metrics``, checked to hold the whole set."""
    metrics = info.get("episode_metrics")
    _require(isinstance(metrics, dict), f"{where}: the last step's info has no episode_metrics")
    terms = (f"return/{name}" for name in (*cell.task.reward_term_names, "energy"))
    missing = {*EPISODE_METRICS, *terms, *cell.task.episode_figures()} - set(metrics)
    _require(not missing, f"{where}: episode_metrics lacks {sorted(missing)}")
    return metrics


def _close(value: float, expected: float, rel: float = 1e-6, abs_: float = 1e-12) -> bool:
    return math.isclose(value, expected, rel_tol=rel, abs_tol=abs_)


class _ReferenceMeter:
    """Meters a cell independently: its own joint read after every physics step.

    Torques as DESIGN defines the metered ones (the robot's ``joint_state``): the commanded
    torques under torque control, the applied motor torques read back under position control.
    """

    def __init__(self, cell: CellEnv) -> None:
        self.cell = cell
        self.inner_step = cell.sim.step
        self.joules = 0.0
        self.metering = False
        cell.sim.step = self.step  # the env's physics loop looks the step up every action

    def step(self) -> None:
        self.inner_step()
        if self.metering:
            state = self.cell.robot.joint_state()
            constants = self.cell.meter.constants
            power = drive_power_w(state.tau, state.qd, constants) + constants.standby_w
            self.joules += (power + self.cell.task.tool_power_w()) * self.cell.sim.timestep_s

    def env_step(self, env: gym.Env, action: Any) -> tuple[float, dict[str, Any], bool]:
        """One env step metered by the reference too: (reference J, info, episode over)."""
        self.joules, self.metering = 0.0, True
        _, _, terminated, truncated, info = env.step(action)
        self.metering = False
        return self.joules, info, terminated or truncated


def check_energy_metering(env_id: str, seed: int = 0) -> None:
    """The meter equals the per-physics-step reference, step by step and in total.

    Over a scripted episode (contacts, arc, suction), where the cell has a controller, and a
    random-action one.
    """
    with closing(make_cell(env_id)) as env:
        cell = env.unwrapped
        reference = _ReferenceMeter(cell)
        policies: list[Callable[[Any], Any]] = [lambda obs: env.action_space.sample()]
        if robocell.envs.CELLS[env_id].controller:
            policies.insert(0, make_controller(env_id, cell))
        reference_j, metered_j = [], []
        for episode_seed, policy in enumerate(policies, start=seed):
            obs, _ = env.reset(seed=episode_seed)
            env.action_space.seed(episode_seed)
            if hasattr(policy, "reset"):
                policy.reset()
            for _ in range(cell.max_steps):
                ref_j, info, over = reference.env_step(env, policy(obs))
                reference_j.append(ref_j)
                metered_j.append(info["energy_j"])
                if over:
                    total = info["episode_metrics"]["energy_j"]
                    _require(_close(total, cell.meter.total_j), "episode energy ≠ the meter's")
                    break
    for step, (ref, got) in enumerate(zip(reference_j, metered_j, strict=True)):
        _require(_close(got, ref, 1e-9), f"step {step}: metered {got:.9g} J, reference {ref:.9g} J")
    _require(_close(sum(metered_j), sum(reference_j), 1e-12), "the episodes' totals differ")


def check_episode_metrics(env_id: str, episodes: int = 2, seed: int = 0) -> None:
    """Random-action episodes each end with the whole ``episode_metrics``."""
    with closing(make_cell(env_id)) as env:
        env.action_space.seed(seed)
        for episode_seed in episode_seeds(seed, episodes):
            env.reset(seed=episode_seed)
            over = False
            while not over:
                *_, terminated, truncated, info = env.step(env.action_space.sample())
                over = terminated or truncated
            _episode_metrics(env.unwrapped, info, f"seed {episode_seed}")


def check_scripted_controller(env_id: str, episodes: int = 2, seed: int = 0) -> str:
    """The cell's scripted controller plays ``episodes`` episodes, none ending in a fault.

    Returns how many succeeded.
    """
    _require(bool(robocell.envs.CELLS[env_id].controller), "the cell has no scripted controller")
    with closing(make_cell(env_id)) as env:
        controller = make_controller(env_id, env.unwrapped)
        successes = 0.0
        for episode_seed in episode_seeds(seed, episodes):
            metrics = run_episode(env, controller, episode_seed)
            _require("fault" not in metrics, f"seed {episode_seed}: the episode ended in a fault")
            successes += metrics["success"]
    return f"{successes:g}/{episodes} episodes succeeded"


# ---------------------------------------------------------------------- all of them
def check_cell(cell: str, episodes: int = 2, seed: int = 0) -> list[CheckResult]:
    """Every check on ``cell`` (anything :func:`resolve_cell` takes), one result each.

    ``episodes`` random and scripted episodes from ``seed`` on; the determinism check
    compares as many random steps, at most ``DETERMINISM_STEPS``.
    """
    spec = resolve_cell(cell)
    env_id = spec.env_id
    steps = min(DETERMINISM_STEPS, episodes * spec.max_episode_steps)
    checks: dict[str, Callable[[], str | None]] = {
        "gymnasium env checker": lambda: check_gymnasium_api(env_id),
        "sb3 env checker": lambda: check_sb3_api(env_id),
        "determinism across processes": lambda: check_determinism(cell, seed, steps),
        "info contract": lambda: check_info_contract(env_id, seed),
        "energy metering": lambda: check_energy_metering(env_id, seed),
        "episode metrics": lambda: check_episode_metrics(env_id, episodes, seed),
        "scripted controller": lambda: check_scripted_controller(env_id, episodes, seed),
    }
    return [_run(name, check) for name, check in checks.items()]


def _run(name: str, check: Callable[[], str | None]) -> CheckResult:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            detail = check() or ""
        except CellCheckError as exc:
            return CheckResult(name, False, str(exc))
        except Exception as exc:  # a failed check too, whatever the cell raised
            return CheckResult(name, False, error_line(exc))
    if caught:
        first = " ".join(_ANSI_COLOUR.sub("", str(caught[0].message)).split())
        detail = "; ".join(filter(None, [detail, f"{len(caught)} warning(s), first: {first}"]))
    return CheckResult(name, True, detail)


if __name__ == "__main__":
    name, seed, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(" ".join(cell_digests(resolve_cell(name).env_id, seed, steps)))
