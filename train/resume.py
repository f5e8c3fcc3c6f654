"""Resumable checkpoints: save everything a run needs to continue, atomically, and load it.

A checkpoint at step N is ``step_N.zip`` (the SB3 model), ``step_N.normalizer.json``
(observation statistics), ``step_N.state.json`` (reward-normaliser statistics, the best
evaluation score so far, wall-clock time) and, for off-policy algorithms,
``step_N.replay_buffer.pkl``. Each file is written to a temporary name and renamed;
``latest.json`` is renamed into place last, so ``kill -9`` at any moment leaves the previous
complete checkpoint in charge. Resuming loses at most one checkpoint interval.

A checkpoint damaged after it was written (a truncated or corrupted file: a full disk, a bad
copy) is detected on resume and the one before it is used instead, with a warning: the
model zip's CRCs are checked before it is loaded, and a file that fails to load counts as
damaged. Only the run's own files are ever loaded.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robocell.agents.algos import OFF_POLICY, algo_class
from robocell.errors import RobocellError
from robocell.normalizer import NormalizerStats, RunningStats
from robocell.train.config import RunConfig
from robocell.train.rundir import (
    RunPaths,
    checkpoint_name,
    companion,
    latest_checkpoint,
    write_latest,
)
from robocell.util import atomic_write_json


@dataclass
class RunState:
    """What a run carries across a restart besides the model and its buffers."""

    timesteps: int = 0
    wall_s: float = 0.0
    best_score: list[float] | None = None
    reward_stats: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"timesteps": self.timesteps, "wall_s": self.wall_s,
                "best_score": self.best_score, "reward_stats": self.reward_stats}  # fmt: skip

    @classmethod
    def from_json(cls, path: Path) -> RunState:
        """Read ``step_N.state.json``."""
        try:
            data = json.loads(path.read_text())
            return cls(int(data["timesteps"]), float(data["wall_s"]), data["best_score"],
                       data["reward_stats"])  # fmt: skip
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RobocellError(f"{path}: not a checkpoint state file ({exc})") from None


def save_checkpoint(model: Any, venv: Any, paths: RunPaths, state: RunState, keep: int) -> Path:
    """Write a complete checkpoint at ``model.num_timesteps`` and point ``latest.json`` at it."""
    steps = int(model.num_timesteps)
    model_zip = paths.checkpoints / f"{checkpoint_name(steps)}.zip"
    normalizer = normalizer_of(venv)
    state.timesteps = steps
    state.reward_stats = _reward_stats(venv)
    if hasattr(model, "replay_buffer") and model.replay_buffer is not None:
        _atomic_save(model.save_replay_buffer, companion(model_zip, ".replay_buffer.pkl"))
    normalizer.to_json(companion(model_zip, ".normalizer.json"))
    atomic_write_json(companion(model_zip, ".state.json"), state.to_dict())
    _atomic_save(model.save, model_zip)
    write_latest(paths, model_zip, steps)
    normalizer.to_json(paths.normalizer)
    _prune(paths, keep)
    return model_zip


def save_model(model: Any, venv: Any, model_zip: Path, normalizer_json: Path) -> None:
    """Save a model and its observation statistics (for ``best/``), each atomically."""
    normalizer_of(venv).to_json(normalizer_json)
    _atomic_save(model.save, model_zip)


def _atomic_save(save: Any, path: Path) -> None:
    # SB3 appends a suffix when the name lacks one, so the temporary name keeps the suffix.
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        save(str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def normalizer_of(venv: Any) -> NormalizerStats:
    """The observation statistics of a (maybe) VecNormalize-wrapped env, as saved."""
    from stable_baselines3.common.vec_env import VecNormalize

    if isinstance(venv, VecNormalize):
        return NormalizerStats.from_vecnormalize(venv)
    return NormalizerStats(clip_obs=10.0, epsilon=1e-8, obs=None)


def _reward_stats(venv: Any) -> dict[str, Any] | None:
    if not getattr(venv, "norm_reward", False):
        return None
    return RunningStats.from_rms(venv.ret_rms).to_dict()


def _prune(paths: RunPaths, keep: int) -> None:
    zips = sorted(paths.checkpoints.glob("step_*.zip"))
    for old in zips[:-keep]:
        for suffix in (".zip", ".normalizer.json", ".state.json", ".replay_buffer.pkl"):
            companion(old, suffix).unlink(missing_ok=True)


# ---------------------------------------------------------------------- loading
# What loading a damaged checkpoint file raises (SB3 zips, pickled replay buffers, JSON).
_DAMAGED = (
    RobocellError, zipfile.BadZipFile, EOFError, pickle.UnpicklingError, OSError, ValueError,
    KeyError, RuntimeError,
)  # fmt: skip


def load_checkpoint(config: RunConfig, paths: RunPaths, venv: Any) -> tuple[Any, RunState]:
    """The model of the newest intact checkpoint on ``venv``, normalisers and buffer restored.

    A damaged checkpoint is skipped with a warning on stderr; ``latest.json`` then names the
    one used, and the files after it are discarded (the resumed run writes those steps again).
    """
    candidates = checkpoint_candidates(paths)
    if not candidates:
        raise RobocellError(f"{paths.root}: no checkpoint to resume from yet (start it again)")
    for model_zip in candidates:
        try:
            model, state = _load(config, venv, model_zip)
        except _DAMAGED as exc:
            print(f"warning: checkpoint {model_zip.name} is damaged ({exc}); trying the one "
                  "before it", file=sys.stderr)  # fmt: skip
            continue
        _discard_after(paths, state.timesteps)
        write_latest(paths, model_zip, state.timesteps)
        return model, state
    raise RobocellError(f"{paths.checkpoints}: every checkpoint is damaged; start the run again")


def checkpoint_candidates(paths: RunPaths) -> list[Path]:
    """Checkpoints to try, newest first: the one ``latest.json`` names, then older ones."""
    try:
        latest = latest_checkpoint(paths.root)
    except RobocellError:
        latest = None  # a damaged latest.json: every checkpoint on disk is a candidate
    zips = sorted(paths.checkpoints.glob("step_*.zip"), reverse=True)
    if latest is not None:
        zips = [latest] + [z for z in zips if z.name < latest.name]
    return zips


def _load(config: RunConfig, venv: Any, model_zip: Path) -> tuple[Any, RunState]:
    state = RunState.from_json(companion(model_zip, ".state.json"))
    _check_zip(model_zip)
    _restore_normalizer(venv, companion(model_zip, ".normalizer.json"), state)
    model = algo_class(config.algo).load(str(model_zip), env=venv, device=config.device)
    buffer = companion(model_zip, ".replay_buffer.pkl")
    if config.algo in OFF_POLICY:
        if not buffer.exists():
            raise RobocellError(f"{buffer}: missing; the replay buffer is needed to resume")
        model.load_replay_buffer(str(buffer))
    return model, state


def _check_zip(model_zip: Path) -> None:
    """The SB3 archive's members and CRCs, read without loading anything.

    A cut SB3 zip may still open as a zip: the torch file inside it is a zip of its own, whose
    end record the reader then finds; it has no ``data`` member.
    """
    with zipfile.ZipFile(model_zip) as archive:
        if "data" not in archive.namelist():
            raise RobocellError(f"{model_zip.name}: not a whole SB3 model archive (no data)")
        bad = archive.testzip()
    if bad is not None:
        raise RobocellError(f"{model_zip.name}: member {bad} is corrupted")


def _discard_after(paths: RunPaths, timesteps: int) -> None:
    # A process killed mid-save leaves temporary files and, maybe, parts of a checkpoint newer
    # than latest.json; the resumed run will write those steps again.
    for tmp in paths.checkpoints.glob(".tmp-*"):
        tmp.unlink(missing_ok=True)
    for path in paths.checkpoints.glob("step_*"):
        if int(path.name.split(".")[0].removeprefix("step_")) > timesteps:
            path.unlink(missing_ok=True)


def _restore_normalizer(venv: Any, path: Path, state: RunState) -> None:
    from stable_baselines3.common.vec_env import VecNormalize

    if not isinstance(venv, VecNormalize):
        return
    NormalizerStats.from_json(path).copy_into(venv)
    if venv.norm_reward and state.reward_stats is not None:
        RunningStats.from_dict(state.reward_stats, "reward_stats").copy_into(venv.ret_rms)
