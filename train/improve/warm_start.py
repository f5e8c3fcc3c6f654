"""Warm start: a new run whose model starts from a trained model's parameters and statistics.

Each challenger of the champion/challenger loop is such a run; it is an ordinary run directory
(TensorBoard, checkpoints, ``--resume``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robocell.errors import RobocellError
from robocell.normalizer import NormalizerStats, RunningStats
from robocell.train.config import RunConfig
from robocell.train.rundir import RunPaths, create_run_dir
from robocell.train.trainer import Trainer, TrainResult


def start_run_from(
    config: RunConfig,
    run_dir: str | Path,
    command: str,
    parent_model_zip: str | Path,
    parent_normalizer: NormalizerStats | None,
    parent_reward_stats: dict[str, Any] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Create ``run_dir`` and train ``config.total_timesteps`` steps starting from a parent.

    The policy and optimiser state come from ``parent_model_zip`` (its architecture must match
    the config's), the observation statistics from ``parent_normalizer`` and the reward
    normaliser's from ``parent_reward_stats`` (:meth:`RunningStats.to_dict` form); the step
    counter starts at 0. The new run is an ordinary run directory (``--resume`` works).
    """
    paths = create_run_dir(run_dir, config, command)
    trainer = WarmStartTrainer(config, paths, progress, Path(parent_model_zip),
                               parent_normalizer, parent_reward_stats)  # fmt: skip
    return trainer.run()


class WarmStartTrainer(Trainer):
    """A fresh-run :class:`Trainer` whose model starts from a trained model's parameters."""

    def __init__(
        self,
        config: RunConfig,
        paths: RunPaths,
        progress: bool,
        parent_model_zip: Path,
        parent_normalizer: NormalizerStats | None,
        parent_reward_stats: dict[str, Any] | None,
    ) -> None:
        super().__init__(config, paths, resume=False, progress=progress)
        self.parent_model_zip = parent_model_zip
        self.parent_normalizer = parent_normalizer
        self.parent_reward_stats = parent_reward_stats

    def _setup_model(self) -> None:
        super()._setup_model()
        try:
            self.model.set_parameters(str(self.parent_model_zip), exact_match=True,
                                      device=self.config.device)  # fmt: skip
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise RobocellError(f"{self.parent_model_zip}: cannot start from these weights "
                                f"({exc})") from None  # fmt: skip
        self._copy_statistics()

    def _clones_demonstrations(self) -> bool:
        return False  # the parent's weights are the starting point, not the demonstrations

    def _copy_statistics(self) -> None:
        from stable_baselines3.common.vec_env import VecNormalize

        if not isinstance(self.venv, VecNormalize):
            return
        if self.parent_normalizer is not None:
            self.parent_normalizer.copy_into(self.venv)
        if self.venv.norm_reward and self.parent_reward_stats is not None:
            stats = RunningStats.from_dict(self.parent_reward_stats, "parent reward statistics")
            stats.copy_into(self.venv.ret_rms)


#: Sample count given to a bundle's observation statistics: the bundle does not record how
#: many observations made them, and a count this large keeps fine-tuning from moving them
#: (a moved mean or spread would change every action the champion's weights take).
BUNDLE_STATISTICS_COUNT = 1e6


def start_run_from_bundle(
    config: RunConfig,
    run_dir: str | Path,
    command: str,
    bundle_dir: str | Path,
    progress: bool = True,
) -> TrainResult:
    """Create ``run_dir`` and train ``config.total_timesteps`` steps starting from a bundle.

    A champion in production is a bundle (ONNX + manifest), not a run: its actor's weights
    and the observation statistics are read from the verified ONNX graph's initializers
    (protobuf, never a pickle). The critic, the action noise (``log_std_init``) and the
    reward normaliser start as the config sets them. The new run is an ordinary run directory.
    """
    from robocell.agents.bundle.intake import check_bundle

    bundle = check_bundle(bundle_dir)
    manifest = bundle.manifest
    if manifest["env_id"] != config.env_id or manifest["algo"] != config.algo:
        raise RobocellError(
            f"{bundle_dir}: a {manifest['algo']} bundle for {manifest['env_id']}; the config "
            f"trains {config.algo} on {config.env_id}"
        )
    paths = create_run_dir(run_dir, config, command)
    trainer = BundleWarmStartTrainer(config, paths, progress, bundle.directory,
                                     bundle.onnx_bytes, manifest)  # fmt: skip
    return trainer.run()


class BundleWarmStartTrainer(Trainer):
    """A fresh-run :class:`Trainer` whose actor starts from a bundle's ONNX weights."""

    def __init__(
        self,
        config: RunConfig,
        paths: RunPaths,
        progress: bool,
        bundle_dir: Path,
        onnx_bytes: bytes,
        manifest: dict[str, Any],
    ) -> None:
        super().__init__(config, paths, resume=False, progress=progress)
        self.bundle_dir, self.onnx_bytes, self.manifest = bundle_dir, onnx_bytes, manifest

    def _setup_model(self) -> None:
        super()._setup_model()
        weights, statistics = bundle_initializers(self.onnx_bytes, self.manifest)
        load_actor(self.model.policy, weights, self.bundle_dir)
        self._copy_statistics(statistics)

    def _clones_demonstrations(self) -> bool:
        return False  # the bundle's weights are the starting point

    def _copy_statistics(self, statistics: dict[str | None, tuple[Any, Any]]) -> None:
        from stable_baselines3.common.vec_env import VecNormalize

        if not isinstance(self.venv, VecNormalize) or not self.venv.norm_obs:
            if statistics:
                raise RobocellError(f"{self.bundle_dir}: the bundle normalises observations "
                                    "and the config does not")  # fmt: skip
            return
        for key, (mean, std) in statistics.items():
            rms = self.venv.obs_rms if key is None else self.venv.obs_rms[key]
            var = np.square(std.astype(np.float64)) - self.venv.epsilon
            RunningStats(mean.astype(np.float64).reshape(rms.mean.shape),
                         np.maximum(var, 0.0).reshape(rms.var.shape),
                         BUNDLE_STATISTICS_COUNT).copy_into(rms)  # fmt: skip


def bundle_initializers(
    onnx_bytes: bytes, manifest: dict[str, Any]
) -> tuple[dict[str, Any], dict[str | None, tuple[Any, Any]]]:
    """The policy's weights (``policy.*`` initializers, by the torch parameter's name) and the
    observation statistics (``mean_i``/``std_i`` of input ``i``, by its key) of a bundle's
    graph (:class:`robocell.agents.onnx_graph.PolicyGraph` names them so)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(onnx_bytes).graph
    arrays = {item.name: numpy_helper.to_array(item) for item in graph.initializer}
    weights = {name[len("policy."):]: value for name, value in arrays.items()
               if name.startswith("policy.")}  # fmt: skip
    statistics = {
        entry["key"]: (arrays[f"mean_{i}"], arrays[f"std_{i}"])
        for i, entry in enumerate(manifest["observation"])
        if f"mean_{i}" in arrays
    }
    return weights, statistics


def load_actor(policy: Any, weights: dict[str, Any], where: Path) -> None:
    """Copy ``weights`` into ``policy``: every one must name a parameter of the same shape,
    and every parameter the deterministic action uses must be among them."""
    import torch

    state = policy.state_dict()
    for name, value in weights.items():
        if name not in state or tuple(state[name].shape) != value.shape:
            found = tuple(state[name].shape) if name in state else "none"
            raise RobocellError(f"{where}: the bundle's {name} {value.shape} does not fit the "
                                f"config's policy (its shape: {found})")  # fmt: skip
    critic = ("value_net.", "mlp_extractor.value_net.", "vf_features_extractor.", "log_std")
    given = {state[name].data_ptr() for name in weights}  # a shared extractor has two names
    missing = [name for name, value in state.items()
               if value.data_ptr() not in given and not name.startswith(critic)]  # fmt: skip
    if missing:
        raise RobocellError(f"{where}: the bundle's graph lacks {', '.join(missing)}")
    with torch.no_grad():
        for name, value in weights.items():
            state[name].copy_(torch.as_tensor(np.array(value), dtype=state[name].dtype))
