"""Training callbacks: cell figures to TensorBoard, evaluation, checkpoints, progress, stop.

TensorBoard tags (besides SB3's ``rollout/``, ``train/``, ``time/``), averaged over the
episodes that ended since the last write:

- ``cell/return``, ``cell/return/<term>``: episode sums of the reward and of each term;
- ``cell/success_rate``, ``cell/cycle_time_s``, ``cell/episode_steps``, ``cell/fault_rate``
  and ``cell/<figure>`` for every quality figure of the cell's ``episode_metrics``;
- ``energy/episode_j`` (J per episode) and ``energy/mean_power_w``;
- ``eval/success_rate``, ``eval/return``, ``eval/energy_j``, ``eval/cycle_time_s``,
  ``eval/<figure>`` from each periodic evaluation, and ``eval/frames`` (rollout stills).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

_SPECIAL_TAGS = {
    "success": "cell/success_rate",
    "energy_j": "energy/episode_j",
    "fault": "cell/fault_rate",
}


def episode_tags(metrics: dict[str, float]) -> dict[str, float]:
    """TensorBoard tag → value for one finished episode's ``episode_metrics``."""
    tags = {_SPECIAL_TAGS.get(key, f"cell/{key}"): float(value) for key, value in metrics.items()}
    tags.setdefault("cell/fault_rate", 0.0)
    terms = [v for k, v in metrics.items() if k.startswith("return/")]
    if terms:
        tags["cell/return"] = float(sum(terms))
    if metrics.get("cycle_time_s", 0.0) > 0 and "energy_j" in metrics:
        tags["energy/mean_power_w"] = metrics["energy_j"] / metrics["cycle_time_s"]
    return tags


class CellMetricsCallback(BaseCallback):
    """Logs every finished episode's ``episode_metrics`` and keeps the recent ones."""

    def __init__(self, window: int = 20) -> None:
        super().__init__()
        self.recent: deque[dict[str, float]] = deque(maxlen=window)

    def _on_step(self) -> bool:
        for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True):
            if not done or "episode_metrics" not in info:
                continue
            metrics = dict(info["episode_metrics"])
            if "fault" in info:
                metrics["fault"] = 1.0
            tags = episode_tags(metrics)
            for tag, value in tags.items():
                self.logger.record_mean(tag, value)
            self.recent.append(tags)
        return True

    def recent_mean(self, tag: str) -> float | None:
        """Mean of ``tag`` over the recent episodes, None before the first."""
        values = [tags[tag] for tags in self.recent if tag in tags]
        return float(np.mean(values)) if values else None


class PeriodicCallback(BaseCallback):
    """Calls ``action()`` at the end of the first rollout past each multiple of ``every`` steps.

    Rollout ends are where SB3's buffers are consistent: an off-policy checkpoint then holds
    every transition counted in ``num_timesteps``.
    """

    def __init__(self, every: int, action: Callable[[], object]) -> None:
        super().__init__()
        self.every = every
        self.action = action
        self._next = 0

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.num_timesteps >= self._next:
            self._next = (self.num_timesteps // self.every + 1) * self.every
            self.action()


class StopCallback(BaseCallback):
    """Ends training (after the current step) once ``should_stop()`` is true."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        super().__init__()
        self.should_stop = should_stop

    def _on_step(self) -> bool:
        return not self.should_stop()


class ProgressBarCallback(BaseCallback):
    """A tqdm bar over the run's timesteps showing return, success rate and energy."""

    def __init__(self, total_timesteps: int, cell: CellMetricsCallback) -> None:
        super().__init__()
        self.total = total_timesteps
        self.cell = cell
        self.bar: Any = None
        self._last_refresh = 0.0

    def _on_training_start(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, initial=self.num_timesteps, unit="step",
                        dynamic_ncols=True, smoothing=0.05)  # fmt: skip

    def _on_step(self) -> bool:
        self.bar.update(self.num_timesteps - self.bar.n)
        now = time.monotonic()
        if now - self._last_refresh > 1.0:
            self._last_refresh = now
            self.bar.set_postfix_str(self._postfix(), refresh=False)
        return True

    def _postfix(self) -> str:
        ret = self.cell.recent_mean("cell/return")
        success = self.cell.recent_mean("cell/success_rate")
        energy = self.cell.recent_mean("energy/episode_j")
        if ret is None:
            return "no episode finished yet"
        text = f"return {ret:.2f}"
        if success is not None:
            text += f" success {100 * success:.0f}%"
        if energy is not None:
            text += f" energy {energy / 1000:.1f} kJ"
        return text

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.update(self.num_timesteps - self.bar.n)
            self.bar.close()
