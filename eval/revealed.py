"""The certifier's record of the master seeds it has revealed: one record per signing key.

Every certificate reveals its master seed, so the seed's episodes are no longer secret. A second
certificate on the same seed would let a supplier who saw the first one's episodes tune on
them, and a FAILED certificate's seed could be certified again until it passes. ``certify``
therefore refuses a seed that its key has revealed before.

The record is a JSON-lines file beside the private key, named by the key's fingerprint
(``revealed-seeds-<16 hex>.jsonl``), one line per revealed seed. A seed counts as revealed when
its certificate is written: the certificate directory is renamed into place and the line is
appended under one lock (``flock``), so an interrupted certify leaves the seed unrevealed and can
be retried, and two runs on one seed cannot both write a certificate.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from robocell.errors import RobocellError
from robocell.util import load_json_strict, read_error


class RevealedSeeds:
    """The revealed-seed record of the key at ``key_path`` (fingerprint ``fingerprint``)."""

    def __init__(self, key_path: str | Path, fingerprint: str) -> None:
        folder = Path(key_path).parent
        self.path = folder / f"revealed-seeds-{fingerprint[:16]}.jsonl"
        self._lock_path = folder / f".revealed-seeds-{fingerprint[:16]}.lock"

    def check_unrevealed(self, commitment: str) -> None:
        """Raise unless no certificate of this key has revealed the seed of ``commitment``."""
        entry = self._entry(commitment)
        if entry is not None:
            raise RobocellError(
                f"the master seed of commitment {commitment} was already revealed by the "
                f"certificate written to {entry.get('output')} at {entry.get('revealed_at')} "
                f"(record {self.path}); its episodes are no longer secret: certify on a new "
                "committed seed (`robocell seeds new`)"
            )
        folder = self.path.parent
        if not os.access(folder, os.W_OK | os.X_OK):
            raise RobocellError(f"{folder}: cannot write the revealed-seed record {self.path}")

    @contextmanager
    def revealing(self, commitment: str, output: Path) -> Iterator[None]:
        """Hold the record's lock while the certificate is written; record the seed after."""
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.check_unrevealed(commitment)
            yield
            line = {
                "commitment": commitment,
                "output": str(output.resolve()),
                "revealed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            with open(self.path, "a") as record:
                record.write(json.dumps(line, sort_keys=True) + "\n")
                record.flush()
                os.fsync(record.fileno())

    def _entry(self, commitment: str) -> dict[str, str] | None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise read_error(self.path, exc, "the revealed-seed record") from None
        for number, line in enumerate(text.splitlines(), start=1):
            entry = load_json_strict(line, f"{self.path} line {number}")
            if isinstance(entry, dict) and entry.get("commitment") == commitment:
                return entry
        return None
