"""Warm start: a new run whose model starts from a trained model's parameters and statistics.

Each challenger of the champion/challenger loop is such a run; it is an ordinary run directory
(TensorBoard, checkpoints, ``--resume``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
