"""Warm start from demonstrations: imitation of the cell's scripted controller, then RL.

Before reinforcement learning starts, a run with a ``pretrain`` section:

1. plays ``episodes`` episodes of the cell's scripted controller
   (:func:`robocell.envs.make.make_controller`, which sees only the observation) and feeds their
   observations (and returns) to the normalisers, as if the training envs had seen them;
2. fits the policy's deterministic action to the controller's actions (mean squared error;
   for a Discrete action the cross-entropy of the controller's action, or with
   ``targets: candidates`` of every action the controller lists as right, e.g. a pick of
   each part the vision cell's sorter detects; with ``targets: outcomes`` the targets of each
   step are corrected by its outcome: the picked part in the bin the reward says was right,
   so the policy learns from the episodes the controller gets wrong) — for PPO also the
   value function to the discounted returns;
3. ``dagger_rounds`` times (DAgger, Ross et al. 2011): plays ``dagger_episodes`` episodes
   with the fitted policy, labels every observation it visited with the controller's action
   and refits on everything so far, so the policy learns to recover from its own mistakes;
4. sets PPO's exploration noise to ``log_std`` (SAC and TQC fit their actor's log std to
   it); off-policy algorithms get every transition played into their replay buffer.

Reinforcement learning then fine-tunes this policy on the cell's own reward. The periodic
evaluation at step 0 records what the imitating policy does before any RL update.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, fields
from typing import Any

import gymnasium as gym
import numpy as np

from robocell.envs.rollout import Policy
from robocell.schema import SchemaError
from robocell.train.config import PretrainConfig, RunConfig

# Candidate actions kept per observation (Discrete actions); unused slots hold -1. The vision
# sorter lists about 37 grid cells per part, at most 5 parts.
MAX_TARGETS = 256


@dataclass
class Demonstrations:
    """Played transitions with raw observations and the controller's action as the label."""

    obs: np.ndarray
    next_obs: np.ndarray
    actions: np.ndarray  # what was executed
    labels: np.ndarray  # what the scripted controller does there
    targets: np.ndarray  # Discrete: every action the controller calls right (-1: unused)
    target_weights: np.ndarray  # and how right (0 where unused)
    rewards: np.ndarray
    dones: np.ndarray  # the episode ended (terminated or truncated) after this step
    terminated: np.ndarray

    @classmethod
    def concat(cls, parts: list[Demonstrations]) -> Demonstrations:
        """All transitions of ``parts`` in order."""
        return cls(**{f.name: _concat([getattr(p, f.name) for p in parts]) for f in fields(cls)})


def play(
    env: Any, actor: Policy, controller: Any, seeds: list[int], hindsight: bool = False
) -> Demonstrations:
    """Play one episode per seed with ``actor``; label each observation with ``controller``.

    ``hindsight``: the Discrete targets come from the step's outcome
    (``controller.outcome_targets``, see :func:`candidate_targets`).
    """
    if hindsight and not hasattr(controller, "outcome_targets"):
        raise SchemaError(
            "pretrain.targets",
            f"'outcomes' needs a controller with outcome_targets; "
            f"{type(controller).__name__} has none",
        )
    columns: dict[str, list[Any]] = {f.name: [] for f in fields(Demonstrations)}
    space = env.action_space
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        controller.reset()
        done = False
        while not done:
            label = _clip(space, controller(obs))
            action = label if actor is controller else _clip(space, actor(obs))
            next_obs, reward, terminated, truncated, info = env.step(action)
            listed = None
            if hindsight:
                listed = controller.outcome_targets(obs, action, info)
            targets, weights = candidate_targets(space, controller, obs, label, listed)
            done = terminated or truncated
            row = (obs, next_obs, action, label, targets, weights, reward, done, terminated)
            for column, value in zip(columns.values(), row, strict=True):
                column.append(value)
            obs = next_obs
    return Demonstrations(**{k: _stack(v) for k, v in columns.items()})


def _clip(space: gym.Space, action: Any) -> np.ndarray:
    if isinstance(space, gym.spaces.Box):
        return np.clip(action, space.low, space.high)
    return np.asarray(action)


def candidate_targets(
    space: gym.Space,
    controller: Any,
    obs: Any,
    label: Any,
    listed: dict[Any, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Discrete actions: every action the controller lists as right here, else its own.

    A controller may list them with weights, ``candidate_actions(obs) -> {action: weight}``
    (the vision cell's sorter: the grid cells around every part it sees, each with the
    part's bin); ``listed`` replaces that list (the hindsight targets of ``targets:
    outcomes``, ``outcome_targets(obs, action, info)``: the vision sorter's cells of the
    part just picked, in the bin the step's reward says was right). Returns
    ``MAX_TARGETS`` indices (-1 where unused) and their weights (0 where unused), the
    heaviest first; empty arrays for continuous actions.
    """
    if not isinstance(space, gym.spaces.Discrete):
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    if listed is None:
        lister = getattr(controller, "candidate_actions", None)
        listed = lister(obs) if lister is not None else {}
    found = dict(listed)
    ranked = sorted(found.items(), key=lambda item: -item[1])[:MAX_TARGETS]
    ranked = ranked or [(label, 1.0)]
    indices = np.full(MAX_TARGETS, -1, np.int64)
    weights = np.zeros(MAX_TARGETS, np.float32)
    indices[: len(ranked)] = [int(action) for action, _ in ranked]
    weights[: len(ranked)] = [weight for _, weight in ranked]
    return indices, weights


# Dict observations (image + state) are kept as a dict of stacked arrays.
def _stack(values: list[Any]) -> Any:
    if values and isinstance(values[0], dict):
        return {key: np.stack([v[key] for v in values]) for key in values[0]}
    return np.asarray(values)


def _concat(parts: list[Any]) -> Any:
    if isinstance(parts[0], dict):
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    return np.concatenate(parts)


def _rows(data: Any, index: Any) -> Any:
    if isinstance(data, dict):
        return {key: value[index] for key, value in data.items()}
    return data[index]


def _tensor(data: Any) -> Any:
    import torch

    if isinstance(data, dict):
        return {key: torch.as_tensor(value) for key, value in data.items()}
    return torch.as_tensor(data, dtype=torch.float32)


def collect_demonstrations(config: RunConfig) -> Demonstrations:
    """The scripted controller's own episodes on the pretraining seeds."""
    from robocell.envs.make import make_controller
    from robocell.train.vec_env import make_training_cell

    spec = _spec(config)
    env = make_training_cell(config)
    try:
        controller = make_controller(config.env_id, env.unwrapped)
        return play(env, controller, controller, _seeds(spec, -1), _hindsight(spec))
    finally:
        env.close()


def _spec(config: RunConfig) -> PretrainConfig:
    if config.pretrain is None:
        raise ValueError("the config has no pretrain section")
    return config.pretrain


def _hindsight(spec: PretrainConfig) -> bool:
    return spec.targets == "outcomes"


def _seeds(spec: PretrainConfig, dagger_round: int) -> list[int]:
    """Round -1: the demonstrations; round r: DAgger's episodes (consecutive seeds)."""
    if dagger_round < 0:
        return list(range(spec.first_seed, spec.first_seed + spec.episodes))
    start = spec.first_seed + spec.episodes + dagger_round * spec.dagger_episodes
    return list(range(start, start + spec.dagger_episodes))


def warm_start(config: RunConfig, model: Any, venv: Any) -> dict[str, float]:
    """Imitate the scripted controller (with DAgger rounds); returns the last fit's losses."""
    from robocell.envs.make import make_controller
    from robocell.train.evaluate import model_policy
    from robocell.train.resume import normalizer_of
    from robocell.train.vec_env import make_training_cell

    spec = _spec(config)
    env = make_training_cell(config)
    try:
        controller = make_controller(config.env_id, env.unwrapped)
        parts = [play(env, controller, controller, _seeds(spec, -1), _hindsight(spec))]
        losses = _fit_all(config, model, venv, parts)
        for dagger_round in range(spec.dagger_rounds):
            stats = normalizer_of(venv)
            actor = model_policy(model, stats if stats.obs is not None else None)
            parts.append(play(env, actor, controller, _seeds(spec, dagger_round), _hindsight(spec)))
            losses = _fit_all(config, model, venv, parts)
    finally:
        env.close()
    _set_exploration(model, spec.log_std)
    if getattr(model, "replay_buffer", None) is not None:
        _fill_replay_buffer(model, Demonstrations.concat(parts))
    return losses


def _fit_all(config: RunConfig, model: Any, venv: Any, parts: list[Demonstrations]) -> Any:
    import torch

    _update_normalizer(venv, parts[-1], config.gamma)
    data = Demonstrations.concat(parts)
    obs, rewards = _normalized(venv, data)
    return _fit(
        config,
        model,
        _tensor(obs),
        _label_tensor(config, model, data),
        torch.as_tensor(_discounted(rewards, data.dones, config.gamma), dtype=torch.float32),
    )


def _label_tensor(config: RunConfig, model: Any, data: Demonstrations) -> Any:
    """What the fit targets: actions (Box), or (indices, weights) of the Discrete targets.

    Discrete: the controller's candidates (``targets: candidates``), their hindsight form
    (``targets: outcomes``) or its own action alone;
    an index of -1 is unused.
    """
    import torch

    if not isinstance(model.action_space, gym.spaces.Discrete):
        return torch.as_tensor(_policy_actions(model, data.labels), dtype=torch.float32)
    if _spec(config).targets in ("candidates", "outcomes"):
        indices, weights = data.targets, data.target_weights
    else:
        indices = data.labels.astype(np.int64)[:, None]
        weights = np.ones_like(indices, dtype=np.float32)
    return torch.stack([torch.as_tensor(indices).double(), torch.as_tensor(weights).double()], 1)


def _policy_actions(model: Any, actions: np.ndarray) -> np.ndarray:
    # Off-policy actors squash into [-1, 1] (SB3 rescales to the Box); PPO's Gaussian mean is
    # in env units and clipped to the Box.
    return model.policy.scale_action(actions) if model.policy.squash_output else actions


def _update_normalizer(venv: Any, demos: Demonstrations, gamma: float) -> None:
    from stable_baselines3.common.vec_env import VecNormalize

    if not isinstance(venv, VecNormalize):
        return
    if venv.norm_obs and isinstance(venv.obs_rms, dict):
        for key, rms in venv.obs_rms.items():
            rms.update(demos.obs[key])
    elif venv.norm_obs:
        venv.obs_rms.update(demos.obs)
    if venv.norm_reward:
        running = 0.0
        for reward, done in zip(demos.rewards, demos.dones, strict=True):
            running = running * gamma + reward
            venv.ret_rms.update(np.array([running]))
            running = 0.0 if done else running


def _normalized(venv: Any, demos: Demonstrations) -> tuple[np.ndarray, np.ndarray]:
    from stable_baselines3.common.vec_env import VecNormalize

    if not isinstance(venv, VecNormalize):
        return demos.obs, demos.rewards
    return venv.normalize_obs(demos.obs), venv.normalize_reward(demos.rewards)


def _discounted(rewards: np.ndarray, dones: np.ndarray, gamma: float) -> np.ndarray:
    returns = np.zeros(len(rewards), dtype=np.float64)
    running = 0.0
    for i in range(len(rewards) - 1, -1, -1):
        running = rewards[i] + gamma * running * (0.0 if dones[i] else 1.0)
        returns[i] = running
    return returns


def _fit(config: RunConfig, model: Any, obs: Any, labels: Any, returns: Any) -> dict[str, float]:
    import torch

    spec = _spec(config)
    policy = model.policy
    policy.set_training_mode(True)
    optimizer = torch.optim.Adam(policy.parameters(), lr=spec.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    losses: dict[str, float] = {}
    for _ in range(spec.epochs):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(labels), spec.batch_size):
            batch = order[start : start + spec.batch_size]
            terms = _losses(model, _rows(obs, batch), labels[batch], returns[batch], spec.log_std)
            optimizer.zero_grad()
            sum(terms.values()).backward()
            optimizer.step()
            losses = {k: float(v.detach()) for k, v in terms.items()}
    policy.set_training_mode(False)
    return losses


def _losses(
    model: Any, obs: Any, labels: Any, returns: Any, log_std: float | None
) -> dict[str, Any]:
    import torch.nn.functional as F

    policy = model.policy
    if hasattr(policy, "actor"):
        return _actor_losses(policy.actor, obs, labels, log_std)
    distribution = policy.get_distribution(obs).distribution
    values = policy.predict_values(obs).flatten()
    value_loss = 0.5 * F.mse_loss(values, returns)
    if isinstance(model.action_space, gym.spaces.Discrete):
        return {
            "action": target_set_cross_entropy(distribution.logits, labels),
            "value": value_loss,
        }
    return {"action": F.mse_loss(distribution.mean, labels), "value": value_loss}


def target_set_cross_entropy(log_probs: Any, targets: Any) -> Any:
    """Cross-entropy against each row's target distribution (weights normalised).

    ``log_probs``: (batch, n) normalised log-probabilities; ``targets``: (batch, 2, k), the
    action indices (-1 where unused; each row has at least one) and their weights. With
    one target per row this is the ordinary cross-entropy of the controller's action.
    """
    indices, weights = targets[:, 0].long(), targets[:, 1].to(log_probs.dtype)
    weights = weights * (indices >= 0)
    picked = log_probs.gather(1, indices.clamp(min=0))
    per_row = (picked * weights).sum(dim=1) / weights.sum(dim=1)
    return -per_row.mean()


def _actor_losses(actor: Any, obs: Any, labels: Any, log_std: float | None) -> dict[str, Any]:
    """SAC, TD3, TQC: the deterministic action; SAC/TQC also the log std of their noise."""
    import torch
    import torch.nn.functional as F

    if "deterministic" not in inspect.signature(actor.forward).parameters:  # TD3
        return {"action": F.mse_loss(actor(obs), labels)}
    losses = {"action": F.mse_loss(actor(obs, deterministic=True), labels)}
    if log_std is not None and not actor.use_sde:
        _, predicted_log_std, _ = actor.get_action_dist_params(obs)
        losses["log_std"] = F.mse_loss(
            predicted_log_std, torch.full_like(predicted_log_std, log_std)
        )
    return losses


def _set_exploration(model: Any, log_std: float | None) -> None:
    import torch

    if log_std is not None and isinstance(getattr(model.policy, "log_std", None), torch.Tensor):
        with torch.no_grad():
            model.policy.log_std.fill_(log_std)


def _fill_replay_buffer(model: Any, demos: Demonstrations) -> None:
    # SB3 keeps raw observations and rewards in the buffer when VecNormalize is used and
    # normalises when sampling, so the transitions go in raw too. Only true terminations
    # count as done (a time limit is bootstrapped through, as SB3 does with TimeLimit.truncated).
    buffer = model.replay_buffer
    width = buffer.n_envs  # the buffer stores one row per env and step
    actions = _policy_actions(model, demos.actions)
    timeouts = demos.dones & ~demos.terminated
    for i in range(0, len(demos.rewards) - width + 1, width):
        rows = slice(i, i + width)
        infos = [{"TimeLimit.truncated": bool(t)} for t in timeouts[rows]]
        buffer.add(_rows(demos.obs, rows), _rows(demos.next_obs, rows), actions[rows],
                   demos.rewards[rows], demos.terminated[rows], infos)  # fmt: skip
