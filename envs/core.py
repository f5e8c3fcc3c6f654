"""The robot / task / env split every cell is built from.

:class:`Task` owns the workpiece, the process model, the reward terms and success; it is
filled in through small hooks. :class:`CellEnv` joins a simulation, a robot, a task and the
energy meter, and does the bookkeeping that is the same for every cell: stepping the physics,
metering energy, the reward sum, the ``info`` contract, episode metrics, faults and the time
limit; and the plant parameters a production line drifts (:meth:`CellEnv.configure`).

``info`` on every step holds each reward term by name (``reward/<term>``), ``energy_j`` (this
step), ``is_success`` and the task's quality figures; on the last step of an episode it also
holds ``episode_metrics`` (success, energy_j, cycle_time_s and the cell's own figures). A
physics blow-up (NaN or exploding state) truncates the episode with ``info["fault"]`` set.

One rule for bad actions in every cell: an action that is not a finite array of the action
space's shape (NaN, infinity, too few or too many elements), or for a ``Discrete`` space not
an integer index within it, is not applied; the episode ends (truncated) with
``info["fault"] = "invalid_action"``, like a physics blow-up. Finite actions outside a box's
bounds are clipped by the task, as before.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from robocell.envs.energy import EnergyMeter
from robocell.envs.line_params import LineParameter, check_all, flatten
from robocell.envs.robot import Robot
from robocell.envs.sim import Sim, projection_matrix, view_matrix

# A reset keeps the loaded robot and rebuilds everything else (Sim.clear), which steps bitwise
# like a world built from scratch; every this many resets the world is built from scratch
# anyway, which frees what PyBullet keeps of removed bodies (e.g. their visual shapes).
REBUILD_EVERY_RESETS = 1000
# Joint speeds above this (rad/s) or TCP positions this far from the base (m) mean the
# solver blew up: the iiwa's fastest joint turns at 2.4 rad/s and it reaches 0.82 m.
EXPLODING_SPEED_RAD_S = 50.0
EXPLODING_DISTANCE_M = 3.0


class Task(ABC):
    """A cell's process. Subclasses fill in the hooks; :class:`CellEnv` calls them.

    Class attributes a subclass sets:
        control_period_s: simulated seconds per env step.
        episode_time_s: time limit of an episode (s).
        reward_term_names: names of the task's reward terms (energy is added by the env).
    """

    control_period_s: float = 0.1
    episode_time_s: float = 30.0
    reward_term_names: tuple[str, ...] = ()

    def __init__(self, sim: Sim, robot: Robot) -> None:
        self.sim = sim
        self.robot = robot
        self.np_random = np.random.default_rng()
        self.observation_space: gym.spaces.Space
        self.action_space: gym.spaces.Space

    @abstractmethod
    def build(self) -> None:
        """Create the workpiece and fixtures in a world holding only the robot, at home.

        Called at every reset: the env keeps the loaded robot and removes every other body
        before (see ``CellEnv.reset``), so the world is built bitwise as from scratch.
        """

    @abstractmethod
    def reset_task(self) -> None:
        """Randomise the episode with ``self.np_random`` and put the robot at its start."""

    @abstractmethod
    def apply_action(self, action: np.ndarray) -> None:
        """Turn an action into controller targets (called once per env step)."""

    def before_physics_step(self, substep: int) -> None:
        """Per physics step, before stepping (e.g. a torque controller). Default: nothing."""

    def after_physics_step(self, substep: int) -> None:
        """Per physics step, after stepping (e.g. contact monitoring). Default: nothing."""

    def tool_power_w(self) -> float:
        """Electrical power (W) of the tool right now (arc, pump). Default: no tool power."""
        return 0.0

    @abstractmethod
    def observe(self) -> Any:
        """The observation (an element of ``observation_space``)."""

    @abstractmethod
    def compute_reward_terms(self) -> dict[str, float]:
        """Reward terms of the step just taken, by name (see ``reward_term_names``)."""

    @abstractmethod
    def is_success(self) -> bool:
        """Whether the task's success rule holds now."""

    def is_terminal(self) -> bool:
        """Whether the episode ends now (task done or failed). Default: never."""
        return False

    def step_figures(self) -> dict[str, float]:
        """Quality figures for ``info`` on every step. Default: none."""
        return {}

    def episode_figures(self) -> dict[str, float]:
        """The cell's own figures for ``episode_metrics`` at episode end."""
        return self.step_figures()

    def render_frame(self) -> np.ndarray:
        """An RGB frame of the cell from a fixed oblique camera (TinyRenderer, headless)."""
        view = view_matrix(eye=(1.6, -1.0, 1.1), target=(0.5, 0.0, 0.2), up=(0.0, 0.0, 1.0))
        proj = projection_matrix(fov_deg=45.0, aspect=4.0 / 3.0, near_m=0.05, far_m=5.0)
        return self.sim.render(320, 240, view, proj)


class CellEnv(gym.Env):
    """A robot cell as a Gymnasium environment: a robot, a task and an energy meter.

    Args:
        sim: the physics client (owned and closed by the env).
        robot: the arm, not yet loaded; the meter uses its energy constants.
        task: the cell's process.
        energy_weight: λ in reward = task terms − λ · energy_j (1/J).
        render_mode: ``None`` or ``"rgb_array"``.
        line_values: the plant and belief parameters the cell was built with (checked), by
            name; the rest keep their defaults.

    Class attributes a cell sets: ``line_parameters`` (the plant's hidden conditions) and
    ``belief_parameters`` (what the controller side believes of them: the calibration).
    """

    line_parameters: ClassVar[tuple[LineParameter, ...]] = ()
    belief_parameters: ClassVar[tuple[LineParameter, ...]] = ()
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        sim: Sim,
        robot: Robot,
        task: Task,
        energy_weight: float,
        render_mode: str | None = None,
        line_values: Mapping[str, float | tuple[float, ...]] | None = None,
    ) -> None:
        if energy_weight < 0:
            raise ValueError(f"energy_weight must be >= 0, got {energy_weight}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.sim = sim
        self.robot = robot
        self.task = task
        self.energy_weight = float(energy_weight)
        self.render_mode = render_mode
        self.meter = EnergyMeter(robot.arm.energy)  # the arm's drives, the cell's tools
        self.observation_space = task.observation_space
        self.action_space = task.action_space
        # Only a rendered physics client needs visual shapes; they cost time at every reset.
        sim.visual_shapes = render_mode is not None
        self.physics_steps_per_action = round(task.control_period_s / sim.timestep_s)
        # Cells whose step is a whole cycle (seconds) still play videos at one step per second.
        fps = max(1, round(1.0 / task.control_period_s))
        self.metadata = {**self.metadata, "render_fps": fps}
        self._steps = 0
        self._episode_return_terms: dict[str, float] = {}
        self._last_obs: Any = None
        self._resets_since_build = REBUILD_EVERY_RESETS
        self._physics_hooks = (
            _hook(task, "before_physics_step"),
            _hook(task, "after_physics_step"),
        )
        every = (*self.line_parameters, *self.belief_parameters)
        self._line_values = {p.name: p.default for p in every}
        self._line_values.update(line_values or {})
        self._pending: dict[str, float | tuple[float, ...]] = {}

    @property
    def max_steps(self) -> int:
        """Steps per episode: the task's time limit over its control period.

        The registry's ``max_episode_steps`` equals it; a shorter one given to ``gym.make``
        is honoured by :class:`robocell.envs.time_limit.CellTimeLimit`, a longer one refused.
        """
        return round(self.task.episode_time_s / self.task.control_period_s)

    # ------------------------------------------------------------------ plant parameters
    @classmethod
    def check_line_values(cls, **values: object) -> dict[str, float | tuple[float, ...]]:
        """Plant and belief values checked by name and range (ValueError naming the kwarg)."""
        return check_all((*cls.line_parameters, *cls.belief_parameters), values)

    def configure(self, **params: object) -> None:
        """Change plant (or belief) parameters between episodes; they act from the next reset.

        The env is not rebuilt. An unknown name or a value out of range is a ValueError.
        """
        self._pending.update(self.check_line_values(**params))

    def line_conditions(self) -> dict[str, float]:
        """The plant parameters in effect this episode, vectors flattened (``_x``, ``_y`` …)."""
        return flatten({p.name: self._line_values[p.name] for p in self.line_parameters})

    def belief(self) -> dict[str, float | tuple[float, ...]]:
        """The belief parameters in effect this episode (the calibration applied)."""
        return {p.name: self._line_values[p.name] for p in self.belief_parameters}

    def apply_line_values(self, values: Mapping[str, float | tuple[float, ...]]) -> None:
        """Put changed plant or belief values into the task (a cell with parameters overrides)."""
        if values:
            raise NotImplementedError(f"{type(self).__name__} has no plant parameters")

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Rebuild the world (bitwise as if from scratch, whatever ran before) and randomise."""
        super().reset(seed=seed)
        if self._pending:
            changed = {k: v for k, v in self._pending.items() if v != self._line_values[k]}
            self._line_values.update(changed)
            self._pending = {}
            self.apply_line_values(changed)
        self.task.np_random = self.np_random
        self._restore_robot()
        with self.sim.no_rendering():
            self.task.build()
        self.task.reset_task()
        self.meter.reset()
        self._steps = 0
        self._episode_return_terms = dict.fromkeys(self._term_names(), 0.0)
        self._last_obs = self.task.observe()
        return self._last_obs, {"is_success": False, **self.task.step_figures()}

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Apply one action for ``physics_steps_per_action`` physics steps.

        An invalid action (see the module docstring) ends the episode with a fault instead.
        """
        action = np.asarray(action)
        if not self._valid_action(action):
            self._steps += 1
            return self._fault_step("invalid_action", 0.0)
        self.task.apply_action(action)
        self._run_physics()
        self._steps += 1
        energy_j = self.meter.take_step_energy_j()
        fault = self._fault()
        if fault:
            return self._fault_step(fault, energy_j)
        terms = self.task.compute_reward_terms()
        terms["energy"] = -self.energy_weight * energy_j
        success = self.task.is_success()
        terminated = self.task.is_terminal()
        truncated = not terminated and self._steps >= self.max_steps
        info = self._info(terms, energy_j, success)
        if terminated or truncated:
            info["episode_metrics"] = self._episode_metrics(success)
        self._last_obs = self.task.observe()
        return self._last_obs, float(sum(terms.values())), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """An RGB frame of the cell (``rgb_array`` mode), from a fixed oblique camera."""
        if self.render_mode != "rgb_array":
            return None
        return self.task.render_frame()

    def close(self) -> None:
        """Release the physics client."""
        self.sim.close()

    # ------------------------------------------------------------------ internals
    def _term_names(self) -> tuple[str, ...]:
        return (*self.task.reward_term_names, "energy")

    def _restore_robot(self) -> None:
        """An empty world but for the robot at home, at rest, as a freshly loaded one."""
        if self._resets_since_build < REBUILD_EVERY_RESETS:
            self.sim.clear(keep=(self.robot.name,))
            self.robot.restart()
            self._resets_since_build += 1
            return
        self.sim.reset()
        with self.sim.no_rendering():
            self.robot.load()
        self._resets_since_build = 1

    def _run_physics(self) -> None:
        # The hot loop: per physics step only the hooks the task fills in, the step and the
        # robot's record (one joint read, which a torque controller's next read shares); the
        # energy arithmetic runs once per action on the recorded arrays.
        robot, step, tool_power_w = self.robot, self.sim.step, self.task.tool_power_w
        before, after = self._physics_hooks
        powers = []
        robot.start_recording()
        for substep in range(self.physics_steps_per_action):
            if before is not None:
                before(substep)
            step()
            robot.record()
            powers.append(tool_power_w())
            if after is not None:
                after(substep)
        tau_nm, qd_rad_s = robot.recorded()
        self.meter.add_steps(tau_nm, qd_rad_s, np.asarray(powers), self.sim.timestep_s)
        self._last_qd = qd_rad_s[-1]

    def _valid_action(self, action: np.ndarray) -> bool:
        """A numeric array of the action space's shape whose every element is finite.

        A ``Discrete`` action must be an integer index within the space: an index has no
        nearest valid value to clip to.
        """
        if action.shape != self.action_space.shape or action.dtype.kind not in "biuf":
            return False
        if isinstance(self.action_space, gym.spaces.Discrete):
            return action.dtype.kind in "iu" and bool(self.action_space.contains(action.item()))
        return bool(np.all(np.isfinite(action)))

    def _fault(self) -> str | None:
        # Joint speeds come from the physics loop's last recorded step, the TCP from the
        # robot's reading of this state (which the task's own measurement then shares).
        speed = float(np.abs(self._last_qd).max())
        x, y, z = self.robot.tcp_pose()[0].tolist()
        if not all(map(math.isfinite, (speed, x, y, z))):
            return "nan_state"
        if speed > EXPLODING_SPEED_RAD_S:
            return "exploding_joint_speed"
        if math.hypot(x, y, z) > EXPLODING_DISTANCE_M:
            return "exploding_position"
        return None

    def _fault_step(
        self, fault: str, energy_j: float
    ) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        # The state is garbage now: repeat (a copy of) the last sane observation.
        obs = copy.deepcopy(self._last_obs)
        info = {"fault": fault, "energy_j": energy_j, "is_success": False}
        info["episode_metrics"] = self._episode_metrics(False)
        return obs, 0.0, False, True, info

    def _info(self, terms: dict[str, float], energy_j: float, success: bool) -> dict[str, Any]:
        for name, value in terms.items():
            self._episode_return_terms[name] += float(value)
        info: dict[str, Any] = {f"reward/{name}": float(v) for name, v in terms.items()}
        info["energy_j"] = energy_j
        info["is_success"] = bool(success)
        info.update(self.task.step_figures())
        return info

    def episode_metrics(self) -> dict[str, float]:
        """The episode's figures so far, as its last step reports them."""
        return self._episode_metrics(self.task.is_success())

    def _episode_metrics(self, success: bool) -> dict[str, float]:
        metrics = {
            "success": float(success),
            "energy_j": self.meter.total_j,
            "cycle_time_s": self._steps * self.task.control_period_s,
            "episode_steps": float(self._steps),
        }
        metrics.update({f"return/{k}": v for k, v in self._episode_return_terms.items()})
        metrics.update(self.task.episode_figures())
        return metrics


def _hook(task: Task, name: str) -> Callable[[int], None] | None:
    """The task's per-physics-step hook, or None where it keeps the default (nothing)."""
    if getattr(type(task), name) is getattr(Task, name):
        return None
    return getattr(task, name)
