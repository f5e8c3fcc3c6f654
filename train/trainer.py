"""A training run from start (or resume) to finish: envs, model, callbacks, evaluation, saving.

:func:`start_run` creates a run directory and trains; :func:`resume_run` continues one from
its latest checkpoint, in the same TensorBoard run, with the step counter continuing. SIGINT
or SIGTERM stop training after the current step, save a checkpoint and return with
``interrupted`` set.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from robocell.errors import RobocellError
from robocell.train.config import RunConfig
from robocell.train.periodic_eval import PeriodicEvaluator
from robocell.train.resume import RunState, load_checkpoint, save_checkpoint
from robocell.train.rundir import (
    RunPaths,
    append_command,
    create_run_dir,
    latest_steps,
    read_config,
    run_lock,
)

EvaluationHook = Callable[[dict[str, Any]], None]
"""Called with each periodic evaluation's ``metrics.jsonl`` row (sweeps report it to Tune)."""


@dataclass
class TrainResult:
    """How a training call ended."""

    run_dir: Path
    timesteps: int
    wall_s: float
    interrupted: bool
    best_score: list[float] | None


def default_run_dir(config: RunConfig, runs_root: str | Path = "runs") -> Path:
    """``runs/<run_name>``, else ``runs/<Cell>-<algo>-s<seed>-<YYYYmmdd-HHMMSS>``."""
    if config.run_name:
        return Path(runs_root) / config.run_name
    cell = config.env_id.rsplit("/", 1)[-1]
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(runs_root) / f"{cell}-{config.algo}-s{config.seed}-{stamp}"


def start_run(
    config: RunConfig,
    run_dir: str | Path,
    command: str,
    progress: bool = True,
    on_evaluation: EvaluationHook | None = None,
) -> TrainResult:
    """Create ``run_dir`` for ``config`` and train it to ``total_timesteps``."""
    paths = create_run_dir(run_dir, config, command)
    with run_lock(paths):
        return Trainer(config, paths, False, progress, on_evaluation).run()


def resume_run(
    run_dir: str | Path,
    command: str,
    progress: bool = True,
    on_evaluation: EvaluationHook | None = None,
) -> TrainResult:
    """Continue the run in ``run_dir`` from its latest checkpoint; refused while another
    process trains it."""
    config = read_config(run_dir)
    paths = RunPaths(Path(run_dir))
    with run_lock(paths):
        append_command(paths, command)
        return Trainer(config, paths, True, progress, on_evaluation).run()


def train_or_resume(
    config: RunConfig,
    run_dir: str | Path,
    command: str,
    on_evaluation: EvaluationHook | None = None,
) -> TrainResult:
    """Train ``config`` in ``run_dir`` to the end, picking up whatever an earlier try left.

    The job of a seed, a sweep trial or a retried task: a finished run is left as it is, a run
    with a checkpoint is resumed, a run killed before its first checkpoint starts again. A run
    directory holding another config is refused.
    """
    from robocell.train.config import config_digest

    paths = RunPaths(Path(run_dir))
    if not paths.config.exists():
        return start_run(config, run_dir, command, False, on_evaluation)
    if config_digest(read_config(run_dir)) != config_digest(config):
        raise RobocellError(f"{run_dir}: holds a run of another config; choose another directory")
    steps = latest_steps(run_dir)
    if steps is None:
        shutil.rmtree(paths.root)  # nothing resumable yet: at most one checkpoint interval lost
        return start_run(config, run_dir, command, False, on_evaluation)
    if steps >= config.total_timesteps:
        return TrainResult(paths.root, steps, 0.0, False, _best_score(paths))
    return resume_run(run_dir, command, False, on_evaluation)


def _best_score(paths: RunPaths) -> list[float] | None:
    score = paths.best / "score.json"
    if not score.exists():
        return None
    data = json.loads(score.read_text())
    return [data["success_rate"], data["mean_return"]]


class Trainer:
    """Owns one training session of a run (a fresh start or a resume)."""

    def __init__(
        self,
        config: RunConfig,
        paths: RunPaths,
        resume: bool,
        progress: bool,
        on_evaluation: EvaluationHook | None = None,
    ) -> None:
        self.config = config
        self.paths = paths
        self.resume = resume
        self.progress = progress
        self.on_evaluation = on_evaluation
        self.stop_requested = False
        self.venv: Any = None
        self.model: Any = None
        self.state = RunState()
        self._t0 = time.monotonic()
        self._wall_at_start = 0.0

    def run(self) -> TrainResult:
        """Train until ``total_timesteps`` or a stop signal; always leave a checkpoint."""
        from robocell.train.vec_env import make_vec_env

        self.venv = make_vec_env(self.config)
        evaluator = None
        try:
            self._setup_model()
            evaluator = PeriodicEvaluator(self.config, self.paths, self.model, self.venv,
                                          self.state, lambda: self.stop_requested,
                                          self._wall_s, self.on_evaluation)  # fmt: skip
            with self._stop_on_signals():
                if self._clones_demonstrations():
                    self._warm_start(evaluator)
                self._learn(evaluator)
                if not self.stop_requested and evaluator.last_eval_step != self.model.num_timesteps:
                    evaluator.evaluate()
                # SB3 writes recorded values at its next rollout; after the last one nothing
                # would, and the final evaluation would be missing from tb/.
                self.model.logger.dump(int(self.model.num_timesteps))
            self.checkpoint()
        finally:
            if evaluator is not None:
                evaluator.close()
            self.venv.close()
        return TrainResult(self.paths.root, int(self.model.num_timesteps), self._wall_s(),
                           self.stop_requested, self.state.best_score)  # fmt: skip

    def checkpoint(self) -> None:
        """Save a resumable checkpoint now."""
        self.state.wall_s = self._wall_s()
        save_checkpoint(self.model, self.venv, self.paths, self.state,
                        self.config.checkpoints_kept)  # fmt: skip

    # ------------------------------------------------------------------ internals
    def _setup_model(self) -> None:
        import torch
        from stable_baselines3.common.logger import configure
        from stable_baselines3.common.utils import set_random_seed

        torch.set_num_threads(self.config.torch_threads)
        if self.resume:
            self.model, self.state = load_checkpoint(self.config, self.paths, self.venv)
            self._wall_at_start = self.state.wall_s
            # A new stream per resume point, so a resumed run does not replay old episodes.
            seed = self.config.seed + self.state.timesteps
            set_random_seed(seed)
            self.model.set_random_seed(seed)
        else:
            from robocell.agents.algos import build_model, zero_action_head

            set_random_seed(self.config.seed)
            self.model = build_model(self.config, self.venv)
            if self.config.residual is not None:
                zero_action_head(self.model)  # step 0 acts as the controller
        self.model.set_logger(configure(str(self.paths.tb), ["tensorboard"]))

    def _clones_demonstrations(self) -> bool:
        """A fresh run with a ``pretrain`` section starts by cloning the scripted controller."""
        return not self.resume and self.config.pretrain is not None

    def _warm_start(self, evaluator: PeriodicEvaluator) -> None:
        from robocell.train.pretrain import warm_start

        losses = warm_start(self.config, self.model, self.venv)
        for name, value in losses.items():
            self.model.logger.record(f"pretrain/{name}_loss", value)
        self.model.logger.dump(0)
        if self.config.eval_freq > 0:
            evaluator.evaluate()  # step 0: the cloned policy before any RL update
        self.checkpoint()  # a resume after this point does not imitate again

    def _learn(self, evaluator: PeriodicEvaluator) -> None:
        remaining = self.config.total_timesteps - int(self.model.num_timesteps)
        if remaining <= 0:
            return
        self.model.learn(remaining, callback=self._callbacks(evaluator),
                         reset_num_timesteps=False, log_interval=1)  # fmt: skip

    def _callbacks(self, evaluator: PeriodicEvaluator) -> list[Any]:
        from robocell.train.callbacks import (
            CellMetricsCallback,
            PeriodicCallback,
            ProgressBarCallback,
            StopCallback,
        )

        cell = CellMetricsCallback()
        callbacks: list[Any] = [cell, StopCallback(lambda: self.stop_requested)]
        if self.config.eval_freq > 0:
            callbacks.append(PeriodicCallback(self.config.eval_freq, evaluator.evaluate))
        if self.config.checkpoint_freq > 0:
            callbacks.append(PeriodicCallback(self.config.checkpoint_freq, self.checkpoint))
        if self.progress:
            callbacks.append(ProgressBarCallback(self.config.total_timesteps, cell))
        return callbacks

    def _wall_s(self) -> float:
        return self._wall_at_start + time.monotonic() - self._t0

    @contextlib.contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # e.g. a Ray Tune trial: only the main thread may install handlers
            return

        def request_stop(signum: int, frame: Any) -> None:
            self.stop_requested = True
            # A second Ctrl-C interrupts at once (the checkpoint of the first is lost).
            signal.signal(signal.SIGINT, signal.default_int_handler)

        old = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)


def check_resumable(run_dir: str | Path) -> None:
    """Raise RobocellError unless ``run_dir`` is a run directory."""
    if not RunPaths(Path(run_dir)).config.exists():
        raise RobocellError(f"{run_dir}: not a run directory (no config.yaml)")
