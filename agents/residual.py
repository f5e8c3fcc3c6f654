"""Residual RL on top of a cell's scripted controller (Johannink et al. 2019).

The executed action is ``clip(controller(obs) + clip(residual, −1, 1) · B, low, high)``: the
learner acts in a residual space ``Box(−1, 1, (k,))``, one entry per action dimension whose
``scale`` (in the env's action units) is above zero, and ``B`` (k × n) puts entry j, times
its scale, on its dimension — a dimension with scale 0 is left to the controller and costs
the learner no exploration noise. A residual of zero is the scripted controller itself, so a
policy whose mean starts at zero starts as the controller.

Three places use the same law: :class:`ResidualAction` (the training and evaluation envs),
:class:`ResidualPolicy` (the numpy/torch reference the export's parity check compares with)
and :func:`residual_model` (the exported bundle: ONE ONNX graph computing controller +
residual, from the controller's own ONNX graph in :mod:`robocell.agents.scripted` and the
trained policy's graph). Nothing here imports torch or stable-baselines3.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import onnx
from onnx import helper, numpy_helper

from robocell.errors import RobocellError

CONTROLLER_PREFIX = "controller/"
Policy = Callable[[Any], np.ndarray]


def scale_vector(scale: float | Sequence[float], action_dim: int) -> np.ndarray:
    """``scale`` as a float32 vector of ``action_dim`` entries (a number applies to all)."""
    values = np.atleast_1d(np.asarray(scale, dtype=np.float32))
    if values.size == 1:
        values = np.full(action_dim, values[0], dtype=np.float32)
    if values.shape != (action_dim,) or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise RobocellError(
            f"residual.scale: expected a number >= 0 or {action_dim} of them, got {scale!r}"
        )
    return values


def residual_basis(scale: np.ndarray) -> np.ndarray:
    """B (k × n, float32): row j holds the j-th scaled dimension's scale at its column."""
    active = np.flatnonzero(scale > 0)
    basis = np.zeros((len(active), len(scale)), dtype=np.float32)
    basis[np.arange(len(active)), active] = scale[active]
    return basis


def combine(
    controller_action: np.ndarray,
    residual: np.ndarray,
    basis: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
) -> np.ndarray:
    """The residual law in float32, row-wise for a batch as for one action."""
    residual = np.clip(np.asarray(residual, dtype=np.float32), -1.0, 1.0)
    total = np.asarray(controller_action, dtype=np.float32) + residual @ basis
    return np.minimum(np.maximum(total, low), high).astype(np.float32)


class ResidualAction(gym.Wrapper):
    """Acts ``controller(obs) + scale ⊙ residual`` in the wrapped env; the agent sends residuals.

    Args:
        env: the cell (its ``action_space`` must be a bounded Box).
        controller: observation → action of the wrapped env (e.g. the scripted welder).
        scale: per-dimension residual range in the env's action units.
    """

    def __init__(self, env: gym.Env, controller: Any, scale: np.ndarray) -> None:
        super().__init__(env)
        space = env.action_space
        if not isinstance(space, gym.spaces.Box) or not np.all(np.isfinite(space.low)):
            raise RobocellError("residual RL needs a bounded Box action space")
        self.controller = controller
        self.basis = residual_basis(np.asarray(scale, dtype=np.float32))
        self.low, self.high = space.low.astype(np.float32), space.high.astype(np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (len(self.basis),), np.float32)
        self._obs: Any = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset the env and the controller."""
        self._obs, info = self.env.reset(**kwargs)
        if hasattr(self.controller, "reset"):
            self.controller.reset()
        return self._obs, info

    def step(self, residual: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Execute controller + residual; ``info["residual_action"]`` is what was executed."""
        action = combine(self.controller(self._obs), residual, self.basis, self.low, self.high)
        self._obs, reward, terminated, truncated, info = self.env.step(action)
        return self._obs, reward, terminated, truncated, {**info, "residual_action": action}


class ResidualPolicy:
    """Controller + scaled residual policy, on raw observations (one, or a batch)."""

    def __init__(
        self, controller: Any, residual: Policy, scale: np.ndarray, low: Any, high: Any
    ) -> None:
        self.controller = controller
        self.residual = residual
        self.basis = residual_basis(np.asarray(scale, dtype=np.float32))
        self.low = np.asarray(low, dtype=np.float32)
        self.high = np.asarray(high, dtype=np.float32)

    def reset(self) -> None:
        """Reset the controller (stateless ones ignore it)."""
        if hasattr(self.controller, "reset"):
            self.controller.reset()

    def __call__(self, obs: Any) -> np.ndarray:
        """The executed action(s)."""
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim == 2:
            base = np.stack([self.controller(row) for row in obs])
        else:
            base = self.controller(obs)
        return combine(base, self.residual(obs), self.basis, self.low, self.high)


def residual_model(
    policy: onnx.ModelProto,
    controller: onnx.ModelProto,
    scale: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
) -> onnx.ModelProto:
    """One graph: ``min(max(controller(obs) + clip(policy(obs), −1, 1) · B, low), high)``.

    Both graphs take ``obs`` and give ``action``; the controller's nodes, edges and constants
    are renamed under ``controller/`` so nothing collides, and both read the same input.
    """
    graph = onnx.GraphProto()
    graph.CopyFrom(policy.graph)
    _rename_output(graph, "action", "residual_raw")
    # The one output is the controller's: ``action`` [batch, n] in the env's units.
    del graph.output[:]
    graph.output.extend(controller.graph.output)
    graph.node.extend(_prefixed_nodes(controller.graph))
    graph.initializer.extend(_prefixed_initializers(controller.graph))
    constants = {
        "residual_basis": residual_basis(np.asarray(scale, dtype=np.float32)),
        "action_low": low,
        "action_high": high,
        "residual_low": -np.ones(1),
        "residual_high": np.ones(1),
    }
    for name, value in constants.items():
        graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), name))
    graph.node.extend(
        [
            helper.make_node("Max", ["residual_raw", "residual_low"], ["residual_above"]),
            helper.make_node("Min", ["residual_above", "residual_high"], ["residual"]),
            helper.make_node("MatMul", ["residual", "residual_basis"], ["residual_scaled"]),
            helper.make_node(
                "Add", [f"{CONTROLLER_PREFIX}action", "residual_scaled"], ["action_sum"]
            ),
            helper.make_node("Max", ["action_sum", "action_low"], ["action_above"]),
            helper.make_node("Min", ["action_above", "action_high"], ["action"]),
        ]
    )
    graph.name = f"{controller.graph.name}+residual"
    model = helper.make_model(graph, opset_imports=list(policy.opset_import))
    model.ir_version = policy.ir_version
    model.producer_name = policy.producer_name
    model.doc_string = "robocell residual policy: scripted controller + learned residual"
    onnx.checker.check_model(model)
    return model


def _rename_output(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        node.output[:] = [new if name == old else name for name in node.output]


def _prefixed(name: str, keep: set[str]) -> str:
    return name if name in keep or not name else f"{CONTROLLER_PREFIX}{name}"


def _prefixed_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    keep = {item.name for item in graph.input}
    nodes = []
    for source in graph.node:
        node = onnx.NodeProto()
        node.CopyFrom(source)
        node.name = _prefixed(node.name or node.output[0], set())
        node.input[:] = [_prefixed(name, keep) for name in node.input]
        node.output[:] = [_prefixed(name, keep) for name in node.output]
        nodes.append(node)
    return nodes


def _prefixed_initializers(graph: onnx.GraphProto) -> list[onnx.TensorProto]:
    tensors = []
    for source in graph.initializer:
        tensor = onnx.TensorProto()
        tensor.CopyFrom(source)
        tensor.name = _prefixed(tensor.name, set())
        tensors.append(tensor)
    return tensors


class Residual:
    """A run's residual setup: which controller, how far the policy may move it.

    Args:
        env_id: the cell.
        controller: controller name (``scripted``: the cell's scripted controller).
        scale: per-dimension residual range (one number applies to every dimension).
    """

    def __init__(self, env_id: str, controller: str, scale: float | Sequence[float]) -> None:
        if controller != "scripted":
            raise RobocellError(f"residual.controller: unknown controller {controller!r}")
        self.env_id = env_id
        self.controller = controller
        self.scale = scale

    def action_dim(self, env: gym.Env) -> int:
        """Entries of the residual: the env's action dimensions with a scale above zero."""
        return len(residual_basis(scale_vector(self.scale, env.action_space.shape[0])))

    def wrap(self, env: gym.Env) -> ResidualAction:
        """``env`` acting controller (built for it) + the agent's residual."""
        from robocell.envs.make import make_controller

        scale = scale_vector(self.scale, env.action_space.shape[0])
        return ResidualAction(env, make_controller(self.env_id, env.unwrapped), scale)

    def policy(self, env: gym.Env, residual: Policy) -> ResidualPolicy:
        """The numpy reference: the controller (built for ``env``) plus ``residual``."""
        from robocell.envs.make import make_controller

        space = env.action_space
        scale = scale_vector(self.scale, space.shape[0])
        controller = make_controller(self.env_id, env.unwrapped)
        return ResidualPolicy(controller, residual, scale, space.low, space.high)

    def model(self, policy_model: onnx.ModelProto, env: gym.Env) -> onnx.ModelProto:
        """One ONNX graph: the controller's graph plus the trained residual graph."""
        from robocell.agents.scripted import SCRIPTED_GRAPHS

        space = env.action_space
        scale = scale_vector(self.scale, space.shape[0])
        controller = SCRIPTED_GRAPHS[self.env_id]()
        return residual_model(policy_model, controller, scale, space.low, space.high)

    def describe(self) -> dict[str, Any]:
        """For provenance: ``{"controller": …, "scale": …}``."""
        return {"controller": self.controller, "scale": self.scale}
