"""Periodic evaluation during training: fixed seeds, ``eval/`` tags, metrics.jsonl, best model.

Every evaluation plays ``eval_episodes`` episodes on seeds ``eval_seed, eval_seed + 1, …``
(the same ones each time, none of them a training episode) with the deterministic policy and
the current observation statistics. The model with the best (success rate, mean return) so
far is saved to ``best/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from robocell.envs.rollout import episode_seeds, summarize
from robocell.train.config import RunConfig
from robocell.train.evaluate import FrameRecorder, episode_return, model_policy, run_episodes
from robocell.train.resume import RunState, normalizer_of, save_model
from robocell.train.rundir import RunPaths, append_metrics
from robocell.util import atomic_write_json

VIDEO_FPS = 10


class PeriodicEvaluator:
    """Evaluates the model being trained and keeps ``best/`` up to date."""

    def __init__(
        self,
        config: RunConfig,
        paths: RunPaths,
        model: Any,
        venv: Any,
        state: RunState,
        should_stop: Callable[[], bool],
        clock_s: Callable[[], float],
        on_row: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.config, self.paths, self.model, self.venv = config, paths, model, venv
        self.state = state
        self.should_stop = should_stop
        self.clock_s = clock_s
        self.on_row = on_row
        self.last_eval_step = -1
        self._env: Any = None

    def evaluate(self) -> bool:
        """Run one evaluation (abandoned if a stop is requested); always lets training go on."""
        from robocell.envs.make import make_cell

        if self._env is None:
            render_mode = "rgb_array" if self.config.eval_video else None
            self._env = make_cell(self.config.env_id, self.config.env_kwargs, render_mode)
        started = time.monotonic()
        stats = normalizer_of(self.venv)
        policy = model_policy(self.model, stats if stats.obs is not None else None)
        seeds = episode_seeds(self.config.eval_seed, self.config.eval_episodes)
        recorder = FrameRecorder(self._env, policy) if self.config.eval_video else None
        episodes = run_episodes(self._env, recorder or policy, seeds[:1], self.should_stop)
        episodes += run_episodes(self._env, policy, seeds[1:], self.should_stop)
        if len(episodes) < len(seeds):
            return True
        self.last_eval_step = int(self.model.num_timesteps)
        row = self._row(episodes, time.monotonic() - started)
        self._log(row)
        if recorder is not None and recorder.frames:
            self._save_video(recorder.frames)
        append_metrics(self.paths, row)
        if self.on_row is not None:
            self.on_row(row)
        return True

    def close(self) -> None:
        """Close the evaluation env."""
        if self._env is not None:
            self._env.close()

    # ------------------------------------------------------------------ internals
    def _row(self, episodes: list[dict[str, float]], eval_s: float) -> dict[str, Any]:
        summary = summarize(episodes)
        mean_return = float(np.mean([episode_return(m) for m in episodes]))
        score = [summary["success_rate"], mean_return]
        best = self.state.best_score is None or score > self.state.best_score
        if best:
            self._save_best(score)
        return {
            "timesteps": self.last_eval_step,
            "wall_s": round(self.clock_s(), 1),
            "eval_s": round(eval_s, 1),
            "first_seed": self.config.eval_seed,
            "mean_return": mean_return,
            "best": best,
            **summary,
        }

    def _save_best(self, score: list[float]) -> None:
        best = self.paths.best
        save_model(self.model, self.venv, best / "model.zip", best / "normalizer.json")
        atomic_write_json(best / "score.json", {"timesteps": self.last_eval_step,
                                                "success_rate": score[0],
                                                "mean_return": score[1]})  # fmt: skip
        self.state.best_score = score

    def _log(self, row: dict[str, Any]) -> None:
        logger = self.model.logger
        logger.record("eval/success_rate", row["success_rate"])
        logger.record("eval/return", row["mean_return"])
        for key, value in row.items():
            if key.startswith("mean/") and key != "mean/success":
                logger.record(f"eval/{key.removeprefix('mean/')}", value)

    def _save_video(self, frames: list[np.ndarray]) -> None:
        import imageio.v2 as imageio
        from stable_baselines3.common.logger import Image

        self.paths.videos.mkdir(exist_ok=True)
        path = self.paths.videos / f"eval_{self.last_eval_step:010d}.gif"
        tmp = path.with_name(f".tmp-{path.name}")
        imageio.mimsave(tmp, frames, duration=1000 / VIDEO_FPS, loop=0)
        tmp.replace(path)
        picks = np.linspace(0, len(frames) - 1, num=min(4, len(frames))).astype(int)
        strip = np.concatenate([frames[i] for i in picks], axis=1)
        self.model.logger.record("eval/frames", Image(strip, "HWC"),
                                 exclude=("stdout", "log", "json", "csv"))  # fmt: skip
