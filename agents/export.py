"""Export a trained run as a controller bundle, with the parity and closed-loop checks.

The export traces the policy into ONNX (:mod:`robocell.agents.onnx_graph`), then checks the
graph against the training-side pipeline, :class:`TorchPolicy` (``NormalizerStats.normalize``
→ SB3 ``predict(deterministic=True)`` with SB3's own unscaling or clipping):

* parity: on at least 1000 observations recorded from rollouts of the trained model in its
  cell (deterministic episodes, and at least one with the policy's stochastic actions for
  states off its usual path; seeds from ``RECORD_FIRST_SEED``)
  plus boundary cases (zeros, the space bounds, the normaliser's clip range and beyond, black,
  white and checkered images), every action component must satisfy
  ``|Δa| <= 1e-5 + 1e-3·|a|``; a discrete action must be the same index or an arg-max tie
  (:mod:`robocell.agents.parity`);
* closed loop: the written bundle, loaded through the same intake checks as certification,
  replays the first deterministic episodes and must reach the same success on each.

Either failure raises RobocellError and leaves no bundle behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import onnx
import torch

from robocell.agents.bundle import inference_session, load_bundle, write_bundle
from robocell.agents.bundle.describe import (
    action_output,
    cell_manifest,
    generic_notes,
    observation_inputs,
)
from robocell.agents.bundle.guard import clip_observation, guard_model
from robocell.agents.bundle.manifest import PARITY_ATOL, PARITY_RTOL
from robocell.agents.bundle.write import check_bundle_target
from robocell.agents.onnx_graph import InputLayout, PolicyGraph, export_onnx, input_layouts
from robocell.agents.parity import check_parity
from robocell.agents.residual import Residual
from robocell.envs.make import make_cell
from robocell.envs.rollout import run_episode
from robocell.errors import RobocellError
from robocell.normalizer import NormalizerStats

MIN_PARITY_OBSERVATIONS = 1000
# Recorded episodes use their own seed range, away from training (seed + env index) and
# from the small seeds people evaluate on.
RECORD_FIRST_SEED = 900_000


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_model` wrote and what its checks found."""

    bundle_dir: Path
    onnx_sha256: str
    manifest_sha256: str
    parity_observations: int
    """Observations recorded from rollouts and compared."""
    boundary_cases: int
    """Edge-case observations compared as well."""
    max_abs_diff: float
    """Largest |onnxruntime action − torch/SB3 action| over all compared observations."""
    worst_ratio: float
    """Largest |Δa| / (1e-5 + 1e-3·|a|): the check passed, so it is <= 1."""
    closed_loop: list[dict[str, float]]
    """Per replayed episode: seed, success and steps with the trained model and the bundle."""
    notes: list[str] = field(default_factory=list)
    """Remarks for the user (e.g. fields the env does not describe)."""
    argmax_ties: int = 0
    """Discrete actions: observations where the graph chose another action of equal
    probability (see :func:`robocell.agents.parity.check_parity`)."""

    @property
    def closed_loop_matches(self) -> int:
        """Replayed episodes whose success agrees between model and bundle."""
        return sum(row["success_torch"] == row["success_bundle"] for row in self.closed_loop)


@dataclass
class ExportSource:
    """A trained model and where it came from."""

    model: Any
    normalizer: NormalizerStats | None
    env_id: str
    env_kwargs: dict[str, Any]
    algo: str
    run_id: str
    config_digest: str
    checkpoint: str
    residual: Residual | None = None
    """Residual RL: the bundle computes controller + the model's residual in one graph."""

    def pipeline(self, env: gym.Env, deterministic: bool = True) -> Callable[[Any], np.ndarray]:
        """The training-side pipeline from raw observations to the env's actions."""
        policy = TorchPolicy(self.model, self.normalizer, deterministic)
        return policy if self.residual is None else self.residual.policy(env, policy)


class TorchPolicy:
    """The training-side pipeline: normaliser statistics, then SB3 ``predict``."""

    def __init__(self, model: Any, normalizer: NormalizerStats | None, deterministic: bool = True):
        self.model = model
        self.normalizer = normalizer
        self.deterministic = deterministic

    def __call__(self, obs: Any) -> np.ndarray:
        """The action for one raw observation (or for a batch)."""
        normalized = self.normalizer.normalize(obs) if self.normalizer else obs
        return self.model.predict(normalized, deterministic=self.deterministic)[0]

    def action_probabilities(self, obs: Any) -> np.ndarray:
        """Discrete actions: the policy's probability of every action, (batch, n)."""
        normalized = self.normalizer.normalize(obs) if self.normalizer else obs
        policy = self.model.policy
        tensors, _ = policy.obs_to_tensor(normalized)
        with torch.no_grad():
            distribution = policy.get_distribution(tensors).distribution
        return distribution.probs.double().cpu().numpy()


@dataclass
class Recording:
    """Observations seen in rollouts, and the deterministic episodes' seeds and figures."""

    observations: list[Any] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)


def record_rollouts(
    env: gym.Env, source: ExportSource, min_observations: int, deterministic_episodes: int
) -> Recording:
    """Roll the trained model out until enough observations and deterministic episodes exist."""
    policies = (source.pipeline(env, True), source.pipeline(env, False))
    recording = Recording()
    seed, stochastic_episodes = RECORD_FIRST_SEED, 0
    with torch.random.fork_rng():
        torch.manual_seed(RECORD_FIRST_SEED)  # stochastic episodes: the same every export
        while (
            len(recording.observations) < min_observations
            or stochastic_episodes == 0
            or len(recording.seeds) < deterministic_episodes
        ):
            # The deterministic episodes come first (they are replayed by the closed-loop
            # check), then stochastic and deterministic ones alternate.
            index = seed - RECORD_FIRST_SEED
            deterministic = index < deterministic_episodes or index % 2 == 1
            policy = policies[0] if deterministic else policies[1]
            metrics = run_episode(env, _recorder(policy, recording.observations), seed)
            if deterministic:
                recording.seeds.append(seed)
                recording.metrics.append(metrics)
            else:
                stochastic_episodes += 1
            seed += 1
    return recording


def _recorder(policy: Callable[[Any], np.ndarray], into: list[Any]) -> Callable[[Any], Any]:
    def act(obs: Any) -> np.ndarray:
        into.append(obs)
        return policy(obs)

    return act


def boundary_observations(
    space: gym.spaces.Space, normalizer: NormalizerStats | None, sample: Any
) -> list[Any]:
    """Edge cases per input: each replaces one input of ``sample`` (a recorded observation)."""
    if isinstance(space, gym.spaces.Dict):
        cases = []
        for key, sub in space.spaces.items():
            stats = _key_stats(normalizer, key)
            cases += [{**sample, key: value} for value in _box_cases(sub, stats, normalizer)]
        return cases
    return _box_cases(space, _key_stats(normalizer, None), normalizer)


def _key_stats(normalizer: NormalizerStats | None, key: str | None) -> Any:
    if normalizer is None or normalizer.obs is None:
        return None
    if isinstance(normalizer.obs, dict):
        return normalizer.obs.get(key)
    return normalizer.obs if key is None else None


def _box_cases(space: Any, stats: Any, normalizer: NormalizerStats | None) -> list[np.ndarray]:
    shape = space.shape
    if space.dtype == np.uint8:
        checkered = (np.indices(shape).sum(axis=0) % 2) * 255
        return [
            np.zeros(shape, np.uint8),
            np.full(shape, 255, np.uint8),
            checkered.astype(np.uint8),
        ]
    alternating = np.where(np.indices(shape).sum(axis=0) % 2 == 0, 1.0, -1.0)
    cases = [np.zeros(shape), np.ones(shape), -np.ones(shape)]
    if stats is not None:
        std = np.sqrt(stats.var + normalizer.epsilon).reshape(shape)
        mean = stats.mean.reshape(shape)
        for k in (1.0, 2.0):  # at the clip range, and twice beyond it
            reach = k * normalizer.clip_obs * std
            cases += [mean + reach, mean - reach, mean + alternating * reach]
    else:
        cases += [1e3 * np.ones(shape), -1e3 * np.ones(shape), 1e3 * alternating]
    if np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high)):
        cases += [space.low, space.high]
    return [np.asarray(case, dtype=space.dtype) for case in cases]


def compare_closed_loop(
    env: gym.Env, policy: Callable[[Any], np.ndarray], recording: Recording, episodes: int
) -> list[dict[str, float]]:
    """Replay the recorded deterministic episodes with ``policy``; raise if a success differs."""
    rows = []
    for seed, torch_metrics in zip(recording.seeds[:episodes], recording.metrics, strict=False):
        metrics = run_episode(env, policy, seed)
        rows.append(
            {
                "seed": float(seed),
                "success_torch": torch_metrics["success"],
                "success_bundle": metrics["success"],
                "steps_torch": torch_metrics["episode_steps"],
                "steps_bundle": metrics["episode_steps"],
            }
        )
    differing = [int(row["seed"]) for row in rows if row["success_torch"] != row["success_bundle"]]
    if differing:
        raise RobocellError(
            f"closed-loop check failed: the bundle's episode outcome differs from the trained "
            f"model's on seeds {differing}; no bundle written"
        )
    return rows


def build_manifest(
    source: ExportSource,
    env: gym.Env,
    parts: tuple[list[dict[str, Any]], dict[str, Any]],
    parity: dict[str, Any],
) -> dict[str, Any]:
    """Every manifest field except the ONNX ones, which :func:`write_bundle` adds."""
    inputs, action = parts
    provenance = {
        # A residual policy is the controller plus the algorithm's correction.
        "algo": source.algo
        if not source.residual
        else f"{source.algo}+residual:{source.residual.controller}",
        "run_id": source.run_id,
        "config_digest": source.config_digest,
        "checkpoint": source.checkpoint,
        "normalization_in_graph": source.normalizer is not None,
    }
    manifest = cell_manifest(env, source.env_id, source.env_kwargs, provenance, parity)
    return {**manifest, "observation": inputs, "action": action}


def export_model(
    source: ExportSource,
    bundle_dir: str | Path,
    *,
    parity_observations: int = MIN_PARITY_OBSERVATIONS,
    closed_loop_episodes: int = 3,
    overwrite: bool = False,
) -> ExportReport:
    """Export ``source`` to ``bundle_dir`` after the parity and closed-loop checks."""
    if parity_observations < MIN_PARITY_OBSERVATIONS:
        raise RobocellError(f"parity needs at least {MIN_PARITY_OBSERVATIONS} observations")
    bundle_dir = Path(bundle_dir)
    check_bundle_target(bundle_dir, overwrite)
    env = make_cell(source.env_id, source.env_kwargs)
    try:
        return _export(
            source, env, bundle_dir, parity_observations, closed_loop_episodes, overwrite
        )
    finally:
        env.close()


def _export(
    source: ExportSource, env: gym.Env, bundle_dir: Path, n_obs: int, episodes: int, overwrite: bool
) -> ExportReport:
    parts = (observation_inputs(env), action_output(env))
    acts_in, expected = source.model.action_space, env.action_space
    if source.residual is not None:
        expected = gym.spaces.Box(-1.0, 1.0, (source.residual.action_dim(env),), np.float32)
    if acts_in != expected:
        raise RobocellError(f"the policy acts in {acts_in}, the env takes {expected}")
    layouts = input_layouts(parts[0], source.model.policy.observation_space)
    model = export_onnx(PolicyGraph(source.model.policy, layouts, source.normalizer))
    if source.residual is not None:
        model = source.residual.model(model, env)
    recording = record_rollouts(env, source, n_obs, episodes)
    placeholder = {"observations": 0, "boundary_cases": 0, "max_abs_diff": 0.0, "worst_ratio": 0.0}
    model = guard_model(model, build_manifest(source, env, parts, placeholder))
    parity = _parity(model, parts[0], layouts, source, env, recording)
    rows: list[dict[str, float]] = []

    def closed_loop(staging: Path) -> None:
        rows.extend(compare_closed_loop(env, load_bundle(staging), recording, episodes))

    manifest = build_manifest(source, env, parts, parity)
    onnx_sha, manifest_sha = write_bundle(bundle_dir, model, manifest, overwrite, closed_loop)
    return ExportReport(
        bundle_dir,
        onnx_sha,
        manifest_sha,
        parity["observations"],
        parity["boundary_cases"],
        parity["max_abs_diff"],
        parity["worst_ratio"],
        rows,
        generic_notes(*parts),
        parity["argmax_ties"],
    )


class ClippedReference:
    """The training-side pipeline behind the guard's clipping to the observation ranges."""

    def __init__(self, pipeline: Callable[[Any], np.ndarray], inputs: list[dict[str, Any]]):
        self.pipeline = pipeline
        self.inputs = inputs
        probabilities = getattr(pipeline, "action_probabilities", None)
        if probabilities is not None:
            self.action_probabilities = lambda obs: probabilities(self._clip(obs))

    def _clip(self, obs: Any) -> Any:
        return clip_observation(obs, self.inputs)[0]

    def __call__(self, obs: Any) -> np.ndarray:
        """The pipeline's action for the clipped observation."""
        return self.pipeline(self._clip(obs))


def _parity(
    model: onnx.ModelProto,
    inputs: list[dict[str, Any]],
    layouts: list[InputLayout],
    source: ExportSource,
    env: gym.Env,
    recording: Recording,
) -> dict[str, Any]:
    """The manifest's ``parity`` record, after checking recorded and boundary observations.

    The graph carries the input guard, so the reference clips to the manifest's observation
    ranges first, as the graph does; recorded observations lie inside them.
    """
    session = inference_session(model.SerializeToString())
    sample = recording.observations[0]
    boundary = boundary_observations(env.observation_space, source.normalizer, sample)
    reference = ClippedReference(source.pipeline(env), inputs)
    figures = check_parity(session, layouts, reference, recording.observations + boundary)
    return {
        "observations": len(recording.observations),
        "boundary_cases": len(boundary),
        "max_abs_diff": figures.max_abs_diff,
        "worst_ratio": figures.worst_ratio,
        "atol": PARITY_ATOL,
        "rtol": PARITY_RTOL,
        "argmax_ties": figures.argmax_ties,
    }
