"""SQLite backend of the telemetry store: the embedded default (a file path).

Every write runs in ``BEGIN IMMEDIATE``: the write lock is taken before the chain's head is
read, so two writers never extend one head, and with the rollback journal and
``synchronous=FULL`` (:func:`robocell.dbstore.sqlite_connect`) a batch commits whole or not at
all, even when the writer is killed. Triggers refuse UPDATE and DELETE of batches, rows and
events, and let a chain's record change only by counting one more batch. A file is made a
store only when it is new or an empty database; one that holds other tables is refused.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from robocell.dbstore import StoreUnavailable, sqlite_open
from robocell.errors import RobocellError
from robocell.line.telemetry.store import TELEMETRY_FORMAT

_APPEND_ONLY = ("telemetry_batches", "telemetry_rows", "telemetry_events")
_SCHEMA = (
    "CREATE TABLE telemetry_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE telemetry_chains (
        line TEXT NOT NULL, cell TEXT NOT NULL, public_key_pem TEXT NOT NULL,
        key_fingerprint TEXT NOT NULL, batches INTEGER NOT NULL, PRIMARY KEY (line, cell))""",
    """CREATE TABLE telemetry_batches (
        line TEXT NOT NULL, cell TEXT NOT NULL, seq INTEGER NOT NULL CHECK (seq > 0),
        prev_hash TEXT NOT NULL, first_part INTEGER NOT NULL, last_part INTEGER NOT NULL,
        rows_sha256 TEXT NOT NULL, batch_hash TEXT NOT NULL, envelope TEXT NOT NULL,
        PRIMARY KEY (line, cell, seq))""",
    """CREATE TABLE telemetry_rows (
        line TEXT NOT NULL, cell TEXT NOT NULL, part INTEGER NOT NULL, seq INTEGER NOT NULL,
        bundle_sha256 TEXT NOT NULL, calibration_version INTEGER NOT NULL,
        sim_time_s REAL NOT NULL, success INTEGER NOT NULL, energy_j REAL NOT NULL,
        co2e_g REAL NOT NULL, cycle_time_s REAL NOT NULL, quality TEXT NOT NULL,
        conditions TEXT NOT NULL, PRIMARY KEY (line, cell, part))""",
    """CREATE TABLE telemetry_events (
        line TEXT NOT NULL, cell TEXT NOT NULL, seq INTEGER NOT NULL, position INTEGER NOT NULL,
        type TEXT NOT NULL, part INTEGER NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (line, cell, seq, position))""",
    *(
        f"""CREATE TRIGGER {table}_append_only_{action} BEFORE {action.upper()} ON {table}
        BEGIN SELECT RAISE(ABORT, 'telemetry is append-only'); END"""
        for table in _APPEND_ONLY
        for action in ("update", "delete")
    ),
    """CREATE TRIGGER telemetry_chains_count BEFORE UPDATE ON telemetry_chains
        WHEN NEW.batches IS NOT OLD.batches + 1 OR NEW.line IS NOT OLD.line
            OR NEW.cell IS NOT OLD.cell OR NEW.public_key_pem IS NOT OLD.public_key_pem
            OR NEW.key_fingerprint IS NOT OLD.key_fingerprint
        BEGIN SELECT RAISE(ABORT, 'a chain record only counts one more batch'); END""",
    """CREATE TRIGGER telemetry_chains_stay BEFORE DELETE ON telemetry_chains
        BEGIN SELECT RAISE(ABORT, 'telemetry is append-only'); END""",
)
_PARAM = re.compile(r"%\((\w+)\)s")


class _SqliteSession:
    """Queries on the store's connection, ``%(name)s`` parameters as SQLite's ``:name``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        rows = self._conn.execute(_PARAM.sub(r":\1", sql), dict(params or {})).fetchall()
        return [dict(row) for row in rows]

    def execute_many(self, sql: str, params: Sequence[Mapping[str, Any]]) -> None:
        if params:
            self._conn.executemany(_PARAM.sub(r":\1", sql), params)


class SqliteBackend:
    """A telemetry store in one SQLite file; ``create=False`` refuses a missing file."""

    def __init__(self, path: Path, create: bool = True) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        missing = StoreUnavailable(f"{self.path}: no telemetry store here")
        self._conn = sqlite_open(
            self.path, create, "telemetry store", missing, StoreUnavailable, self._error
        )
        if create:
            self._create_schema()
        self._check_format()

    def _error(self, exc: sqlite3.Error) -> RobocellError:
        if isinstance(exc, sqlite3.IntegrityError):
            return RobocellError(f"{self.path}: the store refused the write ({exc})")
        if isinstance(exc, sqlite3.OperationalError):
            return StoreUnavailable(
                f"{self.path}: cannot open or write the telemetry store ({exc}); check the path "
                "and its permissions"
            )
        return RobocellError(f"{self.path}: not a telemetry store ({exc})")

    def _create_schema(self) -> None:
        with self._transaction("BEGIN IMMEDIATE") as session:
            tables = {
                row["name"]
                for row in session.query("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if "telemetry_meta" in tables:
                return
            if tables:
                raise RobocellError(
                    f"{self.path}: an SQLite database with other tables "
                    f"({', '.join(sorted(tables))}), not a telemetry store; refusing to add "
                    "telemetry tables to it"
                )
            for statement in _SCHEMA:
                session.query(statement)
            session.query(
                "INSERT INTO telemetry_meta (key, value) VALUES ('format', %(f)s)",
                {"f": TELEMETRY_FORMAT},
            )

    def _check_format(self) -> None:
        with self._transaction("BEGIN") as session:
            meta = session.query("SELECT name FROM sqlite_master WHERE name = 'telemetry_meta'")
            if not meta:
                raise RobocellError(f"{self.path}: not a telemetry store (no telemetry_meta)")
            found = session.query("SELECT value FROM telemetry_meta WHERE key = 'format'")
        if not found or found[0]["value"] != TELEMETRY_FORMAT:
            value = found[0]["value"] if found else "none"
            raise RobocellError(
                f"{self.path}: telemetry format {value}, expected {TELEMETRY_FORMAT}"
            )

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[_SqliteSession]:
        try:
            self._conn.execute(begin)
            try:
                yield _SqliteSession(self._conn)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def write(self, line: str, cell: str) -> AbstractContextManager[_SqliteSession]:
        """``BEGIN IMMEDIATE``: one writer at a time for the whole file."""
        return self._transaction("BEGIN IMMEDIATE")

    def snapshot(self) -> AbstractContextManager[_SqliteSession]:
        """A deferred read transaction: one consistent state while it lasts."""
        return self._transaction("BEGIN")

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
