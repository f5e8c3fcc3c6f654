"""The policy registry of ``robocell improve``: every version, its lineage and the champion.

Layout::

    REGISTRY/index.json              the index (below), rewritten atomically after each step
    REGISTRY/runs/round-<NNN>/       the training run of each round (a normal run directory)
    REGISTRY/validation/round-<NNN>.json   per-episode validation figures of both policies
    REGISTRY/bundles/v<NNN>/         the exported bundle of every version that became champion
    REGISTRY/tb/                     TensorBoard: ``improve/…`` figures and decisions per round
    REGISTRY/.lock                   held (flock) while an ``improve`` process works here

``index.json`` holds ``format``, ``setup`` (what the loop was started with; a later run must
match it), ``base_config`` (the resolved config), ``adopted_run`` (a run adopted as the first
champion, or null), ``next_round`` (the first round not yet finished: a killed loop redoes it
from its start), ``in_progress`` (the round being worked on, if any), ``champion`` (a version
id) and ``versions``: one entry per finished round with ``id``, ``round``, ``parent`` (the
champion it was trained from), ``run_dir``, ``checkpoint``, ``run_id``, ``config_digest``,
``env_kwargs``, ``train_steps``, ``validation`` (summary on that round's seeds),
``validation_file``, ``compared_with`` (the champion's figures on the same seeds),
``decision`` (``initial``, ``promoted`` or ``rejected``), ``reason``, ``test`` (the statistics
behind the decision), ``bundle`` and ``onnx_sha256`` (champions only) and ``created``. A round
is committed in one atomic write, so the index never shows half a round.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from robocell.errors import RobocellError
from robocell.util import atomic_write_json

FORMAT = "robocell-registry/1"
INDEX_FILE = "index.json"


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def version_id(round_index: int) -> str:
    """The id of the version trained in ``round_index``: ``v000``, ``v001``, …"""
    return f"v{round_index:03d}"


class PolicyRegistry:
    """One registry directory and its index (see the module docstring)."""

    def __init__(self, root: Path, index: dict[str, Any]) -> None:
        self.root = root
        self.index = index

    # ------------------------------------------------------------------ paths
    @property
    def index_path(self) -> Path:
        """The JSON index."""
        return self.root / INDEX_FILE

    def run_dir(self, round_index: int) -> Path:
        """Where round ``round_index`` trains."""
        return self.root / "runs" / f"round-{round_index:03d}"

    def version_run_dir(self, vid: str) -> Path:
        """Where version ``vid`` trains: ``runs/round-003`` for v003, ``runs/round-003b`` for
        v003b (one of several challengers)."""
        return self.root / "runs" / f"round-{vid.removeprefix('v')}"

    def bundle_dir(self, vid: str) -> Path:
        """Where version ``vid`` is exported when it becomes champion."""
        return self.root / "bundles" / vid

    def validation_file(self, round_index: int) -> Path:
        """Per-episode validation figures of round ``round_index``."""
        return self.root / "validation" / f"round-{round_index:03d}.json"

    @property
    def tb_dir(self) -> Path:
        """TensorBoard event files of the loop."""
        return self.root / "tb"

    def relative(self, path: Path) -> str:
        """``path`` relative to the registry when inside it, else absolute (for the index)."""
        path = Path(path).resolve()
        root = self.root.resolve()
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)

    def resolve(self, stored: str) -> Path:
        """A path as stored in the index, made usable from the current directory."""
        path = Path(stored)
        return path if path.is_absolute() else self.root / path

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, root: str | Path) -> PolicyRegistry:
        """Read an existing registry; a missing or malformed index is a RobocellError."""
        root = Path(root)
        path = root / INDEX_FILE
        try:
            index = json.loads(path.read_text())
        except FileNotFoundError:
            raise RobocellError(f"{root}: not a registry (no {INDEX_FILE})") from None
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RobocellError(f"{path}: not a readable registry index ({exc})") from None
        _check_index(index, path)
        return cls(root, index)

    @classmethod
    def open_or_create(
        cls, root: str | Path, setup: dict[str, Any], base_config: dict[str, Any]
    ) -> PolicyRegistry:
        """Open the registry at ``root`` if its setup equals ``setup``, else start a new one."""
        root = Path(root)
        if (root / INDEX_FILE).exists():
            registry = cls.open(root)
            registry.check_setup(setup)
            return registry
        if root.exists() and not root.is_dir():
            raise RobocellError(f"{root}: exists and is not a directory")
        if root.is_dir() and any(p.name != ".lock" for p in root.iterdir()):
            raise RobocellError(f"{root}: exists, is not empty and holds no {INDEX_FILE}")
        index = {
            "format": FORMAT,
            "created": utc_now(),
            "setup": setup,
            "base_config": base_config,
            "adopted_run": None,
            "next_round": 0,
            "in_progress": None,
            "champion": None,
            "versions": [],
        }
        registry = cls(root, index)
        registry.save()
        return registry

    def check_setup(self, setup: dict[str, Any]) -> None:
        """Raise unless the loop is continued with what it was started with."""
        old = self.index["setup"]
        for key in sorted(set(old) | set(setup)):
            if old.get(key) != setup.get(key):
                raise RobocellError(
                    f"{self.root}: was started with {key} = {old.get(key)!r}, this run has "
                    f"{setup.get(key)!r}; continue it with the same config and options, "
                    "or give another --registry"
                )

    # ------------------------------------------------------------------ state
    @property
    def next_round(self) -> int:
        """The first round not yet finished."""
        return int(self.index["next_round"])

    @property
    def versions(self) -> list[dict[str, Any]]:
        """Every finished version, oldest first."""
        return list(self.index["versions"])

    @property
    def champion(self) -> dict[str, Any] | None:
        """The current champion's entry (None before round 0 has finished)."""
        vid = self.index["champion"]
        return None if vid is None else self.version(vid)

    def version(self, vid: str) -> dict[str, Any]:
        """The entry of version ``vid``."""
        for entry in self.index["versions"]:
            if entry["id"] == vid:
                return entry
        raise RobocellError(f"{self.index_path}: no version {vid!r}")

    def lineage(self, vid: str) -> list[str]:
        """Champion ids from the first version to ``vid``, following ``parent`` links."""
        chain = [vid]
        while (parent := self.version(chain[-1])["parent"]) is not None:
            if parent in chain:
                raise RobocellError(f"{self.index_path}: the parent links form a cycle")
            chain.append(parent)
        return chain[::-1]

    # ------------------------------------------------------------------ changes
    def begin_round(self, round_index: int) -> None:
        """Record that ``round_index`` is being worked on."""
        self.index["in_progress"] = {"round": round_index, "started": utc_now()}
        self.save()

    def commit(self, entry: dict[str, Any], champion: bool) -> None:
        """Add a finished round's version (the new champion when ``champion``), atomically."""
        self.commit_round([entry], entry["id"] if champion else None)

    def commit_round(self, entries: list[dict[str, Any]], champion: str | None) -> None:
        """Add every version of a finished round and its new champion (if any), atomically."""
        for entry in entries:
            if entry["round"] != self.next_round:
                raise RobocellError(
                    f"round {entry['round']} committed while round {self.next_round} is due"
                )
        now = utc_now()
        self.index["versions"].extend({**entry, "created": now} for entry in entries)
        if champion is not None:
            self.index["champion"] = champion
        self.index["next_round"] = self.next_round + 1
        self.index["in_progress"] = None
        self.save()

    def save(self) -> None:
        """Write the index atomically (a crash leaves the old index or the new one)."""
        atomic_write_json(self.index_path, self.index)


def _check_index(index: Any, path: Path) -> None:
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise RobocellError(f"{path}: not a registry index (format must be {FORMAT!r})")
    for key, kind in (("setup", dict), ("next_round", int), ("versions", list)):
        if not isinstance(index.get(key), kind):
            raise RobocellError(f"{path}: {key!r} is missing or malformed")
    ids = [entry.get("id") for entry in index["versions"] if isinstance(entry, dict)]
    if len(ids) != len(index["versions"]) or len(set(ids)) != len(ids):
        raise RobocellError(f"{path}: versions must be entries with unique ids")
    if index.get("champion") is not None and index["champion"] not in ids:
        raise RobocellError(f"{path}: the champion {index['champion']!r} is not a version")


@contextlib.contextmanager
def registry_lock(root: Path) -> Iterator[None]:
    """Hold ``root/.lock``: a second ``improve`` on the same registry fails instead of mixing.

    The lock (``flock``) goes away with the process, so a killed loop never leaves it held.
    """
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RobocellError(f"{root}: another improve process is using this registry") from None
        yield


def clear_partial_round(registry: PolicyRegistry, round_index: int, ids: list[str]) -> None:
    """Remove what an interrupted round left: run dirs, validation file, bundles of ``ids``."""
    bundles = registry.root / "bundles"
    for vid in ids:
        leftovers = list(bundles.glob(f".{vid}.*")) if bundles.is_dir() else []
        for path in (registry.version_run_dir(vid), registry.bundle_dir(vid), *leftovers):
            if path.is_dir():
                shutil.rmtree(path)
    registry.validation_file(round_index).unlink(missing_ok=True)
