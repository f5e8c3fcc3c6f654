"""The versioned calibration file of a cell (JSON), with its history.

Layout: ``{"format": 1, "env_id": ..., "defaults": {...}, "versions": [{"version": 1,
"values": {...}, "part": 120, "method": ..., "error_after": {...}, "detail": {...},
"utc": "2026-...Z"}, ...]}``. Version 0 is the env's default belief (no file yet). Every
write replaces the file atomically; reads are strict JSON.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from robocell.errors import RobocellError
from robocell.util import atomic_write_bytes, load_json_strict

FORMAT = 1


class CalibrationFile:
    """One cell's calibration file: the current version and every one before it.

    Args:
        path: the JSON file (need not exist yet).
        defaults: the env's default belief values (version 0).
    """

    def __init__(self, path: str | Path, defaults: dict[str, Any]) -> None:
        self.path = Path(path)
        self.defaults = {k: _plain(v) for k, v in defaults.items()}
        self.versions: list[dict[str, Any]] = []

    @classmethod
    def load(cls, path: str | Path, defaults: dict[str, Any] | None = None) -> CalibrationFile:
        """Read ``path`` if it exists; a malformed file is a RobocellError naming it."""
        calibration = cls(path, defaults or {})
        if calibration.path.exists():
            document = load_json_strict(calibration.path.read_bytes(), str(calibration.path))
            calibration._take(document)
        return calibration

    def _take(self, document: Any) -> None:
        where = f"calibration file {self.path}"
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise RobocellError(f"{where}: not a format-{FORMAT} calibration file")
        versions, defaults = document.get("versions"), document.get("defaults")
        if not isinstance(versions, list) or not isinstance(defaults, dict):
            raise RobocellError(f"{where}: 'versions' must be a list, 'defaults' an object")
        for index, entry in enumerate(versions, start=1):
            if not (isinstance(entry, dict) and entry.get("version") == index
                    and isinstance(entry.get("values"), dict)):  # fmt: skip
                raise RobocellError(f"{where}: versions[{index - 1}] is malformed")
        self.defaults, self.versions = defaults, versions

    def current(self) -> tuple[int, dict[str, Any]]:
        """(version, belief values) in effect: version 0 and the defaults without a file."""
        if not self.versions:
            return 0, dict(self.defaults)
        return self.versions[-1]["version"], dict(self.versions[-1]["values"])

    def append(
        self,
        values: dict[str, Any],
        *,
        part: int,
        method: str,
        error_after: dict[str, float],
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Record a new calibration and write the file; returns its version."""
        version = len(self.versions) + 1
        self.versions.append(
            {
                "version": version,
                "values": {k: _plain(v) for k, v in values.items()},
                "part": int(part),
                "method": method,
                "error_after": {k: float(v) for k, v in error_after.items()},
                "detail": {k: _plain(v) for k, v in (detail or {}).items()},
                "utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
        )
        document = {"format": FORMAT, "defaults": self.defaults, "versions": self.versions}
        atomic_write_bytes(self.path, json.dumps(document, indent=1).encode())
        return version


def _plain(value: Any) -> Any:
    """JSON-able: tuples and arrays as lists of floats."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
