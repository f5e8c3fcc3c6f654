"""The torch side of export: one module from raw observations to actions, saved as ONNX.

:class:`PolicyGraph` wraps an SB3 policy so that the exported graph does everything the
training-side pipeline does between the env and the actuators:

1. images that the env gives channel-last are transposed to SB3's channel-first layout;
2. observation normalisation from the run's JSON statistics,
   ``clip((obs - mean) / sqrt(var + epsilon), -clip_obs, clip_obs)``, for the normalised keys;
3. the policy's deterministic action (what ``policy._predict(obs, deterministic=True)``
   returns: SB3's own preprocessing, e.g. images / 255, feature extractor, network,
   distribution mode; see :func:`deterministic_actions`);
4. SB3 ``predict``'s post-processing: ``unscale_action`` when the policy squashes (SAC, TD3,
   TQC, gSDE with ``squash_output``), otherwise clipping to the Box action bounds.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import torch
from gymnasium import spaces
from torch import nn

from robocell.errors import RobocellError
from robocell.normalizer import NormalizerStats, RunningStats

OPSET = 17
_TORCH_DTYPES = {"float32": torch.float32, "uint8": torch.uint8}


@dataclass(frozen=True)
class InputLayout:
    """How one ONNX input feeds the policy (from a manifest ``observation`` entry)."""

    name: str
    key: str | None
    dtype: str
    shape: tuple[int, ...]
    transpose_hwc: bool


def input_layouts(inputs: list[dict[str, Any]], policy_space: spaces.Space) -> list[InputLayout]:
    """Match the env's inputs to the policy's observation space; refuse what differs."""
    layouts = []
    for entry in inputs:
        key, shape = entry["key"], tuple(entry["shape"])
        policy_sub = policy_space if key is None else policy_space.spaces.get(key)
        if policy_sub is None:
            raise RobocellError(f"the policy has no observation key {key!r}")
        expected = tuple(policy_sub.shape)
        transpose = entry["layout"] == "HWC" and expected == (shape[2], shape[0], shape[1])
        if expected != shape and not transpose:
            raise RobocellError(
                f"{entry['name']}: the env observes shape {shape}, the policy expects {expected}"
            )
        layouts.append(InputLayout(entry["name"], key, entry["dtype"], shape, transpose))
    extra = set(getattr(policy_space, "spaces", {})) - {item.key for item in layouts}
    if extra:
        raise RobocellError(f"the policy observes keys the env lacks: {sorted(extra)}")
    return layouts


class PolicyGraph(nn.Module):
    """Raw observation(s) → action in env units, for one SB3 policy and its normaliser."""

    def __init__(
        self,
        policy: Any,
        layouts: list[InputLayout],
        normalizer: NormalizerStats | None,
    ) -> None:
        super().__init__()
        self.policy = policy
        self.layouts = layouts
        self.dict_obs = isinstance(policy.observation_space, spaces.Dict)
        self.clip_obs = float(normalizer.clip_obs) if normalizer else 0.0
        self.normalized = [_stats_for(normalizer, item.key) is not None for item in layouts]
        for i, item in enumerate(layouts):
            stats = _stats_for(normalizer, item.key)
            if stats is not None:
                # float64 → float32 once, as SB3 VecNormalize hands float32 to the policy.
                std = np.sqrt(stats.var + normalizer.epsilon)
                self.register_buffer(f"mean_{i}", _tensor(stats.mean, item.shape))
                self.register_buffer(f"std_{i}", _tensor(std, item.shape))
        self.action_space = policy.action_space
        self.squash = bool(policy.squash_output) and isinstance(self.action_space, spaces.Box)
        if isinstance(self.action_space, spaces.Box):
            self.register_buffer("low", torch.as_tensor(self.action_space.low, dtype=torch.float32))
            self.register_buffer(
                "high", torch.as_tensor(self.action_space.high, dtype=torch.float32)
            )

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Actions for a batch of raw observations, one tensor per ONNX input."""
        observations = {}
        for i, (item, value) in enumerate(zip(self.layouts, inputs, strict=True)):
            if item.transpose_hwc:
                value = value.permute(0, 3, 1, 2)
            if self.normalized[i]:
                value = value if value.dtype == torch.float32 else value.float()
                scaled = (value - getattr(self, f"mean_{i}")) / getattr(self, f"std_{i}")
                value = torch.clamp(scaled, -self.clip_obs, self.clip_obs)
            observations[item.key] = value
        obs = observations if self.dict_obs else observations[None]
        actions = deterministic_actions(self.policy, obs)
        actions = actions.reshape((-1, *self.action_space.shape))
        if not isinstance(self.action_space, spaces.Box):
            return actions.long()
        if self.squash:  # SB3 BasePolicy.unscale_action
            return self.low + 0.5 * (actions + 1.0) * (self.high - self.low)
        return torch.maximum(torch.minimum(actions, self.high), self.low)


def deterministic_actions(policy: Any, obs: Any) -> torch.Tensor:
    """The distribution mode, as ``policy._predict(obs, deterministic=True)`` returns it.

    For the two common Gaussian policies the mode is taken straight from the network
    (PPO/A2C: the mean; SAC/TQC: tanh of the mean), because building a torch distribution
    first leaves ~10 shape and broadcast ops in the graph that cost microseconds per call.
    Every other policy goes through SB3's own ``_predict``. The parity check covers both.
    """
    from stable_baselines3.common.distributions import (
        DiagGaussianDistribution,
        SquashedDiagGaussianDistribution,
    )
    from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy

    if (
        isinstance(policy, ActorCriticPolicy)
        and type(policy.action_dist) is DiagGaussianDistribution
    ):
        features = BasePolicy.extract_features(policy, obs, policy.pi_features_extractor)
        return policy.action_net(policy.mlp_extractor.forward_actor(features))
    actor = getattr(policy, "actor", None)
    if type(getattr(actor, "action_dist", None)) is SquashedDiagGaussianDistribution:
        mean_actions, _, _ = actor.get_action_dist_params(obs)
        return torch.tanh(mean_actions)
    return policy._predict(obs, deterministic=True)


def _stats_for(normalizer: NormalizerStats | None, key: str | None) -> RunningStats | None:
    if normalizer is None or normalizer.obs is None:
        return None
    if isinstance(normalizer.obs, dict):
        return normalizer.obs.get(key) if key is not None else None
    return normalizer.obs if key is None else None


def _tensor(values: np.ndarray, shape: tuple[int, ...]) -> torch.Tensor:
    array = np.asarray(values, dtype=np.float64).reshape(shape)
    return torch.as_tensor(array.astype(np.float32))


@contextmanager
def _no_distribution_validation() -> Iterator[None]:
    # torch.distributions checks its arguments with Python branches on tensor values, which
    # tracing would freeze into the graph; the deterministic action never needs the check.
    previous = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        torch.distributions.Distribution.set_default_validate_args(previous)


def export_onnx(graph: PolicyGraph, opset: int = OPSET) -> onnx.ModelProto:
    """Trace ``graph`` to ONNX: one input per layout, output ``action``, dynamic batch only."""
    graph.policy.set_training_mode(False)
    graph.eval()
    # A batch of 2 while tracing keeps any size-1 special case out of the graph.
    examples = tuple(
        torch.zeros((2, *item.shape), dtype=_TORCH_DTYPES[item.dtype]) for item in graph.layouts
    )
    names = [item.name for item in graph.layouts]
    dynamic = {name: {0: "batch"} for name in [*names, "action"]}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad(), _no_distribution_validation():
        # The TorchScript exporter is deprecated in favour of the torch.export one, which
        # needs onnxscript (not a dependency); its output for these graphs is plain opset ops.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            graph,
            examples,
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=names,
            output_names=["action"],
            dynamic_axes=dynamic,
            do_constant_folding=True,
        )
    model = onnx.load_from_string(buffer.getvalue())
    # The tracer may lose static sizes through broadcasting; the action's shape is known.
    _set_shape(model.graph.output[0], ("batch", *graph.action_space.shape))
    model.producer_name = "robocell"
    model.doc_string = "robocell controller policy: raw observation in, action in env units out"
    return model


def _set_shape(value: onnx.ValueInfoProto, dims: tuple[str | int, ...]) -> None:
    shape = value.type.tensor_type.shape
    del shape.dim[:]
    for dim in dims:
        if isinstance(dim, str):
            shape.dim.add().dim_param = dim
        else:
            shape.dim.add().dim_value = int(dim)
