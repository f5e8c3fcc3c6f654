"""The algorithm registry: names → SB3 classes, hyperparameter checks, policy choice, models.

Validation (:func:`check_hyperparams`, :func:`check_policy_kwargs`) needs no torch, so a bad
config fails in a fraction of a second; :func:`algo_class` and :func:`build_model` import
SB3 only when called. Schedules follow rl-zoo3: ``lin_3e-4`` decays linearly from 3e-4 to 0
over training.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from robocell.schema import SchemaError


class ModelConfig(Protocol):
    """What building a model reads from a training config (``robocell.train.config.RunConfig``)."""

    algo: str
    policy: str
    hyperparams: Mapping[str, Any]
    policy_kwargs: Mapping[str, Any]
    seed: int
    device: str


# algorithm name -> "module:Class"
ALGOS: dict[str, str] = {
    "ppo": "stable_baselines3:PPO",
    "sac": "stable_baselines3:SAC",
    "td3": "stable_baselines3:TD3",
    "tqc": "sb3_contrib:TQC",
}
OFF_POLICY = frozenset({"sac", "td3", "tqc"})
# robocell's own policy classes: name -> "module:Class" (imported only when a model is built).
CUSTOM_POLICIES: dict[str, str] = {
    "PickMapPolicy": "robocell.agents.policies:PickMapPolicy",  # vision cell, pixel-wise pick
}
CUSTOM_POLICY_ALGOS: dict[str, tuple[str, ...]] = {"PickMapPolicy": ("ppo",)}
POLICIES = ("MlpPolicy", "CnnPolicy", "MultiInputPolicy", *CUSTOM_POLICIES)
ACTIVATIONS = {"tanh": "Tanh", "relu": "ReLU", "elu": "ELU", "leaky_relu": "LeakyReLU",
               "gelu": "GELU", "silu": "SiLU"}  # fmt: skip

# Hyperparameters each algorithm takes from a config, by SB3 name -> kind of value. The run
# owns the rest (policy, env, seed, device, logging). ``noise_*`` are rl-zoo3's action noise.
_COMMON = {
    "learning_rate": "schedule",
    "gamma": "unit",
    "batch_size": "pos_int",
    "stats_window_size": "pos_int",
}
_SDE = {"use_sde": "bool", "sde_sample_freq": "int_or_minus1"}  # not TD3
_OFF = {
    **_COMMON,
    "buffer_size": "pos_int",
    "learning_starts": "nonneg_int",
    "tau": "unit",
    "train_freq": "train_freq",
    "gradient_steps": "int_or_minus1",
    "optimize_memory_usage": "bool",
    "n_steps": "pos_int",
    "replay_buffer_kwargs": "mapping",
    "noise_type": "noise_type",
    "noise_std": "nonneg_float",
}
_SAC = {
    **_OFF,
    **_SDE,
    "ent_coef": "ent_coef",
    "target_update_interval": "pos_int",
    "target_entropy": "target_entropy",
    "use_sde_at_warmup": "bool",
}
HYPERPARAMS: dict[str, dict[str, str]] = {
    "ppo": {**_COMMON, **_SDE, "n_steps": "pos_int", "n_epochs": "pos_int", "gae_lambda": "unit0",
            "clip_range": "schedule", "clip_range_vf": "schedule_or_none",
            "normalize_advantage": "bool", "ent_coef": "nonneg_float", "vf_coef": "nonneg_float",
            "max_grad_norm": "pos_float", "target_kl": "pos_float_or_none",
            "rollout_buffer_kwargs": "mapping"},
    "sac": _SAC,
    "td3": {**_OFF, "policy_delay": "pos_int", "target_policy_noise": "nonneg_float",
            "target_noise_clip": "nonneg_float"},
    "tqc": {**_SAC, "top_quantiles_to_drop_per_net": "nonneg_int"},
}  # fmt: skip


# ---------------------------------------------------------------------- validation
def check_hyperparams(algo: str, hyperparams: dict[str, Any], n_envs: int = 1) -> None:
    """Reject unknown names and bad values; messages name ``hyperparams.<name>``."""
    kinds = HYPERPARAMS[algo]
    for name, value in hyperparams.items():
        path = f"hyperparams.{name}"
        if name not in kinds:
            allowed = ", ".join(sorted(kinds))
            raise SchemaError(path, f"unknown hyperparameter for {algo} (allowed: {allowed})")
        problem = _CHECKS[kinds[name]](value)
        if problem:
            raise SchemaError(path, f"{problem}, got {value!r}")
    if algo == "ppo" and hyperparams.get("n_steps", 2048) * n_envs < 2:
        raise SchemaError("hyperparams.n_steps", "n_steps * n_envs must be > 1")


def check_policy_kwargs(policy_kwargs: dict[str, Any]) -> None:
    """Check ``net_arch`` and ``activation_fn``; SB3 checks the rest when the model is built."""
    arch = policy_kwargs.get("net_arch")
    if arch is not None and not _is_net_arch(arch):
        raise SchemaError(
            "policy_kwargs.net_arch",
            f"expected a list of layer widths or a mapping pi/vf/qf -> widths, got {arch!r}",
        )
    act = policy_kwargs.get("activation_fn")
    if act is not None and act not in ACTIVATIONS:
        choices = ", ".join(ACTIVATIONS)
        raise SchemaError("policy_kwargs.activation_fn", f"must be one of {choices}, got {act!r}")


def _is_net_arch(arch: Any) -> bool:
    def widths(v: Any) -> bool:
        return isinstance(v, list) and all(_is_int(w) and w > 0 for w in v)

    if isinstance(arch, dict):
        return bool(arch) and set(arch) <= {"pi", "vf", "qf"} and all(map(widths, arch.values()))
    return widths(arch)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _schedule_problem(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith("lin_"):
        value = _float_or_none(value[4:])
    if _is_number(value) and value > 0:
        return None
    return "expected a positive number or a linear schedule like lin_3e-4"


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _ent_coef_problem(value: Any) -> str | None:
    if isinstance(value, str) and (value == "auto" or value.startswith("auto_")):
        start = 1.0 if value == "auto" else _float_or_none(value[5:])
        return None if start is not None and start > 0 else "auto_<x> needs a positive x"
    return None if _is_number(value) and value >= 0 else "expected a number >= 0 or auto[_x]"


def _train_freq_problem(value: Any) -> str | None:
    if _is_int(value) and value >= 1:
        return None
    if (
        isinstance(value, list)
        and len(value) == 2
        and _is_int(value[0])
        and value[0] >= 1
        and value[1] in ("step", "episode")
    ):
        return None
    return "expected a positive integer or [n, step|episode]"


def _kind(test: Callable[[Any], bool], problem: str) -> Callable[[Any], str | None]:
    return lambda value: None if test(value) else problem


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "schedule": _schedule_problem,
    "schedule_or_none": lambda v: None if v is None else _schedule_problem(v),
    "unit": _kind(lambda v: _is_number(v) and 0 < v <= 1, "must be in (0, 1]"),
    "unit0": _kind(lambda v: _is_number(v) and 0 <= v <= 1, "must be in [0, 1]"),
    "pos_int": _kind(lambda v: _is_int(v) and v >= 1, "expected an integer >= 1"),
    "nonneg_int": _kind(lambda v: _is_int(v) and v >= 0, "expected an integer >= 0"),
    "int_or_minus1": _kind(lambda v: _is_int(v) and v >= -1, "expected an integer >= -1"),
    "nonneg_float": _kind(lambda v: _is_number(v) and v >= 0, "expected a number >= 0"),
    "pos_float": _kind(lambda v: _is_number(v) and v > 0, "expected a number > 0"),
    "pos_float_or_none": _kind(lambda v: v is None or (_is_number(v) and v > 0),
                               "expected a number > 0 or null"),
    "bool": _kind(lambda v: isinstance(v, bool), "expected true or false"),
    "mapping": _kind(lambda v: isinstance(v, dict), "expected a mapping"),
    "ent_coef": _ent_coef_problem,
    "train_freq": _train_freq_problem,
    "target_entropy": _kind(lambda v: v == "auto" or _is_number(v), "expected auto or a number"),
    "noise_type": _kind(lambda v: v in ("normal", "ornstein-uhlenbeck"),
                        "must be normal or ornstein-uhlenbeck"),
}  # fmt: skip


# ---------------------------------------------------------------------- building
def algo_class(algo: str) -> type:
    """The SB3 class of an algorithm name (imports SB3)."""
    module, name = ALGOS[algo].split(":")
    return getattr(importlib.import_module(module), name)


def linear_schedule(initial: float) -> Callable[[float], float]:
    """rl-zoo3's linear schedule: ``initial`` at the start of training, 0 at the end."""

    def schedule(progress_remaining: float) -> float:
        return progress_remaining * initial

    return schedule


def resolve_schedule(value: Any) -> Any:
    """``lin_<x>`` → a linear schedule; anything else unchanged."""
    if isinstance(value, str) and value.startswith("lin_"):
        return linear_schedule(float(value[4:]))
    return value


def policy_class(name: str) -> Any:
    """What SB3 takes as ``policy``: its own alias, or the class of a robocell policy."""
    if name not in CUSTOM_POLICIES:
        return name
    module, attribute = CUSTOM_POLICIES[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def choose_policy(observation_space: Any) -> str:
    """MlpPolicy for vectors, CnnPolicy for images, MultiInputPolicy for Dict spaces."""
    from gymnasium import spaces
    from stable_baselines3.common.preprocessing import is_image_space

    if isinstance(observation_space, spaces.Dict):
        return "MultiInputPolicy"
    if is_image_space(observation_space, check_channels=False):
        return "CnnPolicy"
    return "MlpPolicy"


def model_kwargs(config: ModelConfig, action_space: Any) -> dict[str, Any]:
    """SB3 constructor keyword arguments from the config (schedules, noise, activation)."""
    kwargs = {name: resolve_schedule(value) for name, value in config.hyperparams.items()}
    if isinstance(kwargs.get("train_freq"), list):
        kwargs["train_freq"] = tuple(kwargs["train_freq"])
    noise_type, noise_std = kwargs.pop("noise_type", None), kwargs.pop("noise_std", None)
    if noise_type is not None and noise_std:
        kwargs["action_noise"] = _action_noise(noise_type, noise_std, action_space)
    policy_kwargs = dict(config.policy_kwargs)
    if "activation_fn" in policy_kwargs:
        import torch.nn as nn

        policy_kwargs["activation_fn"] = getattr(nn, ACTIVATIONS[policy_kwargs["activation_fn"]])
    kwargs["policy_kwargs"] = policy_kwargs
    return kwargs


def _action_noise(kind: str, std: float, action_space: Any) -> Any:
    import numpy as np
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    dim = action_space.shape[0]
    noise = NormalActionNoise if kind == "normal" else OrnsteinUhlenbeckActionNoise
    return noise(mean=np.zeros(dim), sigma=std * np.ones(dim))


def build_model(config: ModelConfig, env: Any, tensorboard_log: str | None = None) -> Any:
    """A fresh SB3 model for ``config`` on the (vectorised) ``env``; bad kwargs → SchemaError."""
    policy = config.policy
    if policy == "auto":
        policy = choose_policy(env.observation_space)
    kwargs = model_kwargs(config, env.action_space)
    cls = algo_class(config.algo)
    try:
        return cls(policy_class(policy), env, seed=config.seed, device=config.device, verbose=0,
                   tensorboard_log=tensorboard_log, **kwargs)  # fmt: skip
    except (TypeError, ValueError, AssertionError) as exc:
        raise SchemaError("policy_kwargs", f"{cls.__name__} refused the config: {exc}") from None


def zero_action_head(model: Any) -> None:
    """Zero the last layer of the policy's action mean, so its deterministic action is 0.

    For residual RL: a zero residual is the controller, so training starts exactly at the
    controller (Johannink et al. 2019). PPO: ``action_net``; SAC/TQC: ``actor.mu``; TD3: the
    last linear layer of ``actor.mu`` (the target actor is synced). Exploration noise is the
    algorithm's (PPO's ``log_std_init``, SAC's entropy, TD3's action noise).
    """
    import torch

    policy = model.policy
    actor = getattr(policy, "actor", None)
    if actor is None:
        layer = policy.action_net
    else:
        head = actor.mu
        linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
        layer = linears[-1]
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
    target = getattr(policy, "actor_target", None)
    if target is not None:
        target.load_state_dict(actor.state_dict())
