"""The training-run schema: one typed, documented dataclass per run, read from YAML.

YAML → :func:`load_config` (``--set`` overrides applied last) → :class:`RunConfig`. Unknown
keys and bad values raise :class:`robocell.schema.SchemaError` naming the field, e.g.
``hyperparams.gamma: must be in (0, 1], got 1.5``. Nothing here imports torch or SB3.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from robocell.agents.algos import (
    CUSTOM_POLICY_ALGOS,
    POLICIES,
    check_hyperparams,
    check_policy_kwargs,
)
from robocell.errors import RobocellError
from robocell.schema import SchemaError, parse, to_dict
from robocell.train.improve.config import ImproveConfig
from robocell.util import canonical_json, load_yaml, parse_override, sha256_bytes, yaml_numbers

_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class NormalizeConfig:
    """Observation and reward normalisation (SB3 ``VecNormalize``)."""

    obs: bool = True
    """Normalise observations with running mean/variance (saved as JSON, baked into exports)."""
    reward: bool = True
    """Scale rewards by the running std of the discounted return (training only)."""
    clip_obs: float = 10.0
    """Clip normalised observations to ±clip_obs."""
    clip_reward: float = 10.0
    """Clip normalised rewards to ±clip_reward."""
    epsilon: float = 1e-8
    """Added to the variance before the square root."""
    obs_keys: list[str] | None = None
    """Dict observations: keys to normalise; default every non-image key (images never)."""

    def validate(self) -> None:
        """Range checks."""
        for name in ("clip_obs", "clip_reward", "epsilon"):
            if not getattr(self, name) > 0:
                raise SchemaError(f"normalize.{name}", f"must be > 0, got {getattr(self, name)}")


@dataclass
class PretrainConfig:
    """Warm start by imitating the cell's scripted controller (see train/pretrain.py)."""

    episodes: int = 30
    """Demonstration episodes of the scripted controller."""
    dagger_rounds: int = 2
    """DAgger rounds: play the policy, label its observations with the controller, refit."""
    dagger_episodes: int = 10
    """Episodes the policy plays per DAgger round."""
    first_seed: int = 3_000_000
    """Seed of the first demonstration episode; DAgger's follow (apart from evaluation's)."""
    epochs: int = 60
    """Passes over the transitions collected so far, per fit."""
    batch_size: int = 256
    """Transitions per gradient step."""
    learning_rate: float = 1e-3
    """Adam step size of the cloning fit."""
    log_std: float | None = -2.0
    """Log std of the exploration noise after imitation: PPO's is set, SAC/TQC's actor is
    fitted to it (None: leave it)."""
    targets: Literal["action", "candidates", "outcomes"] = "action"
    """Discrete actions: fit the cross-entropy of the controller's own action (``action``),
    of every action it lists as right (``candidates``; the vision cell's sorter: a pick of
    each part it detects, with that part's bin), or of the right actions the step's
    outcome shows (``outcomes``, hindsight; the vision sorter: the picked part, in the bin
    the reward says was right)."""

    def validate(self) -> None:
        """Range checks."""
        for name in ("episodes", "epochs", "batch_size", "dagger_episodes"):
            if getattr(self, name) < 1:
                raise SchemaError(f"pretrain.{name}", f"must be >= 1, got {getattr(self, name)}")
        if self.dagger_rounds < 0:
            raise SchemaError("pretrain.dagger_rounds", f"must be >= 0, got {self.dagger_rounds}")
        if self.first_seed < 0:
            raise SchemaError("pretrain.first_seed", f"must be >= 0, got {self.first_seed}")
        if not self.learning_rate > 0:
            raise SchemaError("pretrain.learning_rate", f"must be > 0, got {self.learning_rate}")


@dataclass
class ResidualConfig:
    """Residual RL (Johannink et al. 2019): the policy learns a correction to a controller.

    The env executes ``clip(controller(obs) + scale ⊙ residual, action bounds)`` with the
    policy's residual in [−1, 1] per dimension (see :mod:`robocell.agents.residual`); the
    exported bundle is one ONNX graph computing the same sum. A residual of 0 is the
    controller, so a policy that starts near zero (PPO's action head is initialised with
    gain 0.01; keep ``log_std_init`` small) starts as the controller.
    """

    controller: Literal["scripted"] = "scripted"
    """The controller under the residual: ``scripted``, the cell's scripted controller
    (``robocell baseline``), which must be writable as ONNX (stateless)."""
    scale: float | list[float] = 0.2
    """Largest residual per action dimension, in the env's action units: one number for all
    dimensions, or one per dimension (0 leaves that dimension to the controller)."""

    def validate(self) -> None:
        """Range checks (the length of a list is checked against the env's action space)."""
        values = self.scale if isinstance(self.scale, list) else [self.scale]
        if not values or any(not v >= 0 for v in values) or not any(v > 0 for v in values):
            raise SchemaError("residual.scale", f"must be >= 0 and not all 0, got {self.scale}")


@dataclass
class RunConfig:
    """One training run. Field names follow SB3 / rl-zoo3 where they exist."""

    env_id: str
    """Registered Gymnasium id, e.g. ``robocell/WeldSeam-v1``."""
    algo: Literal["ppo", "sac", "td3", "tqc"]
    """Algorithm: PPO, SAC, TD3 (stable-baselines3) or TQC (sb3-contrib)."""
    total_timesteps: int
    """Environment steps to train for, summed over all parallel envs."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of ``gymnasium.make`` (e.g. ``energy_weight``). A cell with
    potential-based shaping takes the algorithm's γ as ``gamma``; when given, it must equal
    ``hyperparams.gamma`` (or SB3's default 0.99), else the shaping would change the optimum."""
    randomize: dict[str, list[float]] = field(default_factory=dict)
    """Domain randomisation of the cell's plant parameters (``robocell envs`` lists them):
    each episode of the training, demonstration and periodic-evaluation envs draws every
    named parameter uniformly from its ``[low, high]`` (per element for a vector), from the
    episode's seed. The exported bundle keeps ``env_kwargs``: the cell as deployed."""
    policy: Literal["auto", "MlpPolicy", "CnnPolicy", "MultiInputPolicy", "PickMapPolicy"] = "auto"
    """SB3 policy; ``auto`` picks it from the observation space (vector, image, dict).
    ``PickMapPolicy`` (PPO, :mod:`robocell.agents.policies`): fully-convolutional pick
    scores over the image for the vision cell's grid action."""
    hyperparams: dict[str, Any] = field(default_factory=dict)
    """Algorithm hyperparameters by their SB3 names; ``lin_<x>`` is a linear schedule from x
    to 0; off-policy algorithms also take rl-zoo3's ``noise_type`` and ``noise_std``."""
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    """SB3 ``policy_kwargs``: ``net_arch``, ``activation_fn`` by name (``tanh``, ``relu``…)…"""
    n_envs: int = 1
    """Parallel environments."""
    vec_env: Literal["dummy", "subproc"] = "dummy"
    """``dummy``: envs in this process; ``subproc``: one process per env."""
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    """Observation and reward normalisation."""
    seed: int = 0
    """Seeds torch, numpy, the algorithm and the training envs (env i gets seed + i)."""
    eval_freq: int = 10_000
    """Evaluate every this many timesteps (0: never); the best model goes to ``best/``."""
    eval_episodes: int = 10
    """Episodes per periodic evaluation."""
    eval_seed: int = 1_000_000
    """First seed of the evaluation episodes (the same seeds each time, apart from training)."""
    eval_video: bool = False
    """Render one evaluation episode (``rgb_array``) per evaluation to ``videos/`` and TB."""
    checkpoint_freq: int = 10_000
    """Save a resumable checkpoint every this many timesteps (0: only at the end)."""
    checkpoints_kept: int = 2
    """Keep this many most recent checkpoints; older ones are deleted."""
    run_name: str | None = None
    """Run directory name under ``runs/``; default ``<cell>-<algo>-<seed>-<time>``."""
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    """Torch device; small MLP policies are fastest on the CPU."""
    torch_threads: int = 1
    """Torch intra-op threads; 1 leaves the other cores to the environments."""
    pretrain: PretrainConfig | None = None
    """Warm start from the cell's scripted controller before RL; null: learn from scratch."""
    improve: ImproveConfig = field(default_factory=ImproveConfig)
    """Settings of ``robocell improve`` (the champion/challenger loop); ignored by training."""
    residual: ResidualConfig | None = None
    """Residual RL on top of the cell's scripted controller; null: the policy acts alone."""

    def validate(self) -> None:
        """Range and consistency checks; every message names the field."""
        _check_env_id(self.env_id)
        _at_least(self, "total_timesteps", 1)
        _at_least(self, "n_envs", 1)
        _at_least(self, "eval_freq", 0)
        _at_least(self, "eval_episodes", 1)
        _at_least(self, "eval_seed", 0)
        _at_least(self, "seed", 0)
        _at_least(self, "checkpoint_freq", 0)
        _at_least(self, "checkpoints_kept", 1)
        _at_least(self, "torch_threads", 1)
        if self.run_name is not None and not _RUN_NAME.match(self.run_name):
            raise SchemaError("run_name", f"use letters, digits, '.', '_', '-': {self.run_name!r}")
        if self.policy != "auto" and self.policy not in POLICIES:
            raise SchemaError("policy", f"unknown policy {self.policy!r}")
        algos = CUSTOM_POLICY_ALGOS.get(self.policy)
        if algos is not None and self.algo not in algos:
            raise SchemaError("policy", f"{self.policy} works with {', '.join(algos)} only")
        if self.pretrain is not None:
            _check_has_baseline(self.env_id)
        if self.residual is not None:
            _check_residual(self.env_id, self.residual, self.pretrain)
        _check_randomize(self.randomize)
        check_hyperparams(self.algo, self.hyperparams, self.n_envs)
        check_policy_kwargs(self.policy_kwargs)
        self._check_shaping_gamma()

    def _check_shaping_gamma(self) -> None:
        shaping_gamma = self.env_kwargs.get("gamma")
        if shaping_gamma is not None and shaping_gamma != self.gamma:
            raise SchemaError(
                "env_kwargs.gamma",
                f"the shaping's gamma must equal the algorithm's ({self.gamma}), "
                f"got {shaping_gamma!r}",
            )

    @property
    def cpus_per_run(self) -> int:
        """CPUs a run keeps busy: one per env process with ``subproc``, else one."""
        return self.n_envs if self.vec_env == "subproc" else 1

    @property
    def gamma(self) -> float:
        """The discount factor (the algorithm's default when not set)."""
        return float(self.hyperparams.get("gamma", 0.99))


def _at_least(config: RunConfig, name: str, low: int) -> None:
    value = getattr(config, name)
    if value < low:
        raise SchemaError(name, f"must be >= {low}, got {value}")


def _check_randomize(randomize: dict[str, list[float]]) -> None:
    """Each entry a [low, high] pair with low <= high (names and ranges: the env's check)."""
    for name, bounds in randomize.items():
        where = f"randomize.{name}"
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise SchemaError(where, f"expected [low, high], got {bounds!r}")
        if not bounds[0] <= bounds[1]:
            raise SchemaError(where, f"low must be <= high, got {bounds!r}")


def _check_env_id(env_id: str) -> None:
    import gymnasium as gym

    from robocell.envs import discover_cells

    discover_cells()  # registers the plug-in cells too
    if env_id not in gym.registry:
        raise SchemaError("env_id", f"unknown environment {env_id!r} (`robocell envs` lists them)")


def _check_has_baseline(env_id: str) -> None:
    from robocell.envs import CELLS

    if env_id not in CELLS:
        raise SchemaError("pretrain", f"{env_id} has no scripted controller to learn from")


def _check_residual(env_id: str, residual: ResidualConfig, pretrain: Any) -> None:
    from robocell.agents.scripted import SCRIPTED_GRAPHS

    if pretrain is not None:
        raise SchemaError("residual", "residual RL starts as the controller: drop pretrain")
    if env_id not in SCRIPTED_GRAPHS:
        known = ", ".join(SCRIPTED_GRAPHS)
        raise SchemaError("residual.controller", f"{env_id} has no stateless scripted "
                          f"controller to export in one graph (only: {known})")  # fmt: skip


# ---------------------------------------------------------------------- loading
def load_config(
    path: str | Path, overrides: Sequence[str] = (), seed: int | None = None
) -> RunConfig:
    """Read a YAML config, apply ``key=value`` overrides and ``seed``, and validate it."""
    data = yaml_numbers(load_yaml(path))
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(data, key, value)
    if seed is not None:
        data["seed"] = seed
    try:
        return parse(RunConfig, data)
    except SchemaError as exc:
        error = SchemaError("", f"{path}: {exc}")
        error.field = exc.field
        raise error from None


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """A RunConfig from plain data (e.g. a run directory's ``config.yaml``)."""
    return parse(RunConfig, yaml_numbers(data))


def config_digest(config: RunConfig) -> str:
    """sha256 of the canonical JSON of the resolved config.

    An empty ``randomize`` is left out, so configs without it keep the digest they had
    before the field existed.
    """
    data = to_dict(config)
    if not data["randomize"]:
        del data["randomize"]
    return sha256_bytes(canonical_json(data))


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``data[a][b] = value`` for ``key == "a.b"``, creating mappings on the way."""
    *parents, last = key.split(".")
    node = data
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise RobocellError(f"--set {key}: {part!r} is not a mapping in the config")
        node = child
    node[last] = value
