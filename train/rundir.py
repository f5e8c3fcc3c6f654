"""The run directory: what a training run leaves behind, and :func:`load_run` to read it.

Layout::

    RUN_DIR/config.yaml          resolved RunConfig (to_dict)
    RUN_DIR/command.txt          every command line that trained this run (one per line)
    RUN_DIR/tb/                  TensorBoard event files (one run, continued on resume)
    RUN_DIR/checkpoints/         step_<N>.zip + step_<N>.normalizer.json + step_<N>.state.json
                                 (+ step_<N>.replay_buffer.pkl for off-policy algorithms);
                                 latest.json names the newest complete checkpoint
    RUN_DIR/best/model.zip       best model by periodic evaluation
    RUN_DIR/best/normalizer.json its observation statistics; best/score.json its evaluation
    RUN_DIR/normalizer.json      latest normaliser statistics
    RUN_DIR/metrics.jsonl        one JSON line per evaluation
    RUN_DIR/videos/              evaluation rollouts as GIFs (when ``eval_video`` is on)
    RUN_DIR/.lock                held (flock) by the process training the run; holds its pid

Every file is written atomically; ``latest.json`` is written last, so a run killed at any
moment (even ``kill -9``) points at a complete checkpoint. Pickles (SB3 zips, replay buffers)
are only ever loaded from the run's own directory.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from robocell.errors import RobocellError
from robocell.normalizer import NormalizerStats
from robocell.schema import SchemaError, to_dict
from robocell.train.config import RunConfig, config_digest, config_from_dict
from robocell.util import atomic_write_json, atomic_write_text, load_yaml


@dataclass(frozen=True)
class RunPaths:
    """Paths inside one run directory."""

    root: Path

    @property
    def config(self) -> Path:
        """The resolved config."""
        return self.root / "config.yaml"

    @property
    def command(self) -> Path:
        """The command lines that trained the run."""
        return self.root / "command.txt"

    @property
    def tb(self) -> Path:
        """TensorBoard event files."""
        return self.root / "tb"

    @property
    def checkpoints(self) -> Path:
        """Resumable checkpoints."""
        return self.root / "checkpoints"

    @property
    def latest(self) -> Path:
        """Names the newest complete checkpoint."""
        return self.checkpoints / "latest.json"

    @property
    def best(self) -> Path:
        """The best model by evaluation."""
        return self.root / "best"

    @property
    def normalizer(self) -> Path:
        """Latest normaliser statistics."""
        return self.root / "normalizer.json"

    @property
    def metrics(self) -> Path:
        """One JSON line per evaluation."""
        return self.root / "metrics.jsonl"

    @property
    def videos(self) -> Path:
        """Evaluation rollouts."""
        return self.root / "videos"

    @property
    def lock(self) -> Path:
        """Held by the process that trains the run."""
        return self.root / ".lock"


def checkpoint_name(timesteps: int) -> str:
    """File stem of the checkpoint at ``timesteps`` (zero-padded, so names sort by step)."""
    return f"step_{timesteps:010d}"


def companion(model_zip: Path, suffix: str) -> Path:
    """A file saved with a checkpoint: ``step_N.zip`` → ``step_N<suffix>``."""
    return model_zip.with_name(model_zip.stem + suffix)


# ---------------------------------------------------------------------- creating
def create_run_dir(root: str | Path, config: RunConfig, command: str) -> RunPaths:
    """Create a new run directory with ``config.yaml`` and ``command.txt``; never reuse one."""
    paths = RunPaths(Path(root))
    if paths.root.exists() and any(paths.root.iterdir()):
        raise RobocellError(f"{paths.root}: run directory exists and is not empty "
                            "(pass --resume to continue it, or another --run-dir)")  # fmt: skip
    for folder in (paths.root, paths.tb, paths.checkpoints, paths.best):
        folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(paths.config, yaml.safe_dump(to_dict(config), sort_keys=False))
    append_command(paths, command)
    return paths


@contextmanager
def run_lock(paths: RunPaths) -> Iterator[None]:
    """Hold the run's lock while training it: a second process on the run is refused.

    An ``flock`` on ``RUN_DIR/.lock``: the kernel drops it when the holder exits, even on
    ``kill -9``, so a crashed run never stays locked.
    """
    handle = open(paths.lock, "a+")  # noqa: SIM115  (held open for the whole session)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RobocellError(
            f"{paths.root}: the run is being trained by process {holder}; wait for it to "
            "finish or stop it, then resume"
        ) from None
    try:
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the flock


def open_setup_dir(root: Path, record: str, setup: dict[str, Any], option: str) -> None:
    """Start a directory of several runs (a seed group, a sweep) or continue one.

    A new directory gets ``record`` (JSON) holding ``setup``; an existing one must hold the same
    setup, else the error names what changed and the ``option`` that picks another directory.
    """
    path = root / record
    if path.exists():
        old = json.loads(path.read_text())
        changed = sorted(key for key, value in setup.items() if old.get(key) != value)
        if changed:
            raise RobocellError(
                f"{root}: was started with other {', '.join(changed)}; "
                f"continue it with the same command, or give another {option}"
            )
        return
    if root.exists() and any(root.iterdir()):
        raise RobocellError(f"{root}: exists, is not empty and holds no {record}")
    atomic_write_json(path, setup)


def append_command(paths: RunPaths, command: str) -> None:
    """Add a command line to ``command.txt``."""
    old = paths.command.read_text() if paths.command.exists() else ""
    atomic_write_text(paths.command, old + command.rstrip("\n") + "\n")


def read_config(run_dir: str | Path) -> RunConfig:
    """The run's resolved config; a missing or invalid one is a RobocellError naming it."""
    path = RunPaths(Path(run_dir)).config
    if not Path(run_dir).is_dir():
        raise RobocellError(f"{run_dir}: no such run directory")
    try:
        return config_from_dict(load_yaml(path))
    except SchemaError as exc:
        raise RobocellError(f"{path}: {exc}") from None


def append_metrics(paths: RunPaths, row: dict[str, Any]) -> None:
    """Append one evaluation row to ``metrics.jsonl`` (flushed to disk)."""
    with open(paths.metrics, "a") as handle:
        handle.write(json.dumps(row, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of ``metrics.jsonl``; a line cut short by a crash is skipped."""
    path = RunPaths(Path(run_dir)).metrics
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def write_latest(paths: RunPaths, model_zip: Path, timesteps: int) -> None:
    """Point ``latest.json`` at a checkpoint whose files are all written."""
    atomic_write_json(paths.latest, {"checkpoint": model_zip.name, "timesteps": timesteps})


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint's model zip, or None before the first one."""
    paths = RunPaths(Path(run_dir))
    if not paths.latest.exists():
        return None
    try:
        name = json.loads(paths.latest.read_text())["checkpoint"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise RobocellError(f"{paths.latest}: not a checkpoint record") from None
    path = paths.checkpoints / Path(name).name
    if not path.exists():
        raise RobocellError(f"{paths.latest}: names {name}, which is missing")
    return path


def latest_steps(run_dir: str | Path) -> int | None:
    """Timesteps of the newest complete checkpoint, or None before the first one."""
    paths = RunPaths(Path(run_dir))
    if latest_checkpoint(run_dir) is None:
        return None
    try:
        return int(json.loads(paths.latest.read_text())["timesteps"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise RobocellError(f"{paths.latest}: not a checkpoint record") from None


# ---------------------------------------------------------------------- loading
@dataclass
class LoadedRun:
    """A trained model with what is needed to run it outside training."""

    model: Any
    normalizer: NormalizerStats | None
    config: RunConfig
    config_digest: str
    run_id: str
    checkpoint_path: Path


def load_run(run_dir: str | Path, checkpoint: str | Path = "best") -> LoadedRun:
    """Load a run's model (``best``, ``last`` or a checkpoint zip inside the run), on the CPU."""
    root = Path(run_dir)
    config = read_config(root)
    model_zip, normalizer_json = _resolve_checkpoint(root, checkpoint)
    normalizer = _read_normalizer(config, normalizer_json)
    from robocell.agents.algos import algo_class

    try:
        model = algo_class(config.algo).load(str(model_zip), device="cpu")
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise RobocellError(f"{model_zip}: cannot load the model ({exc})") from None
    return LoadedRun(model, normalizer, config, config_digest(config), root.resolve().name,
                     model_zip)  # fmt: skip


def _resolve_checkpoint(root: Path, checkpoint: str | Path) -> tuple[Path, Path]:
    paths = RunPaths(root)
    if checkpoint == "best":
        model_zip, normalizer = paths.best / "model.zip", paths.best / "normalizer.json"
        if not model_zip.exists():
            raise RobocellError(f"{root}: no best model yet (no evaluation has finished)")
        return model_zip, normalizer
    if checkpoint == "last":
        model_zip = latest_checkpoint(root)
        if model_zip is None:
            raise RobocellError(f"{root}: no checkpoint yet")
        return model_zip, companion(model_zip, ".normalizer.json")
    model_zip = Path(checkpoint)
    if not model_zip.resolve().is_relative_to(root.resolve()):
        raise RobocellError(f"{checkpoint}: not inside {root}; only a run's own files are loaded")
    if model_zip.suffix != ".zip" or not model_zip.is_file():
        raise RobocellError(f"{checkpoint}: no such checkpoint zip")
    if model_zip.parent.resolve() == paths.best.resolve():
        return model_zip, paths.best / "normalizer.json"
    return model_zip, companion(model_zip, ".normalizer.json")


def _read_normalizer(config: RunConfig, path: Path) -> NormalizerStats | None:
    if not config.normalize.obs:
        return None
    if not path.exists():
        raise RobocellError(f"{path}: missing (the run normalises observations)")
    stats = NormalizerStats.from_json(path)
    return stats if stats.obs is not None else None
