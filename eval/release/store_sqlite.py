"""SQLite storage for the release ledger: the embedded default behind :class:`LedgerStore`.

Durability and exclusivity come from SQLite itself: every write runs in ``BEGIN IMMEDIATE``
(the write lock is taken before anything is read, so two processes never decide on the same
head), the rollback journal with ``synchronous=FULL`` makes a commit all-or-nothing across a
crash or power cut, a partial UNIQUE index makes a second RELEASED entry for a milestone
impossible whatever the code above does (and so does a second RELEASED entry for a
certificate), and triggers refuse UPDATE and DELETE. Every write checks that the file it opened
is still the ledger's path, so a ledger removed or replaced while open is never written to
unseen, and every SQLite failure (a read-only file, a full disk) is a
:class:`~robocell.eval.release.ledger.LedgerUnavailable` with nothing written.

A file is made a ledger only when it is new or an empty database: an SQLite database that
holds other tables is refused, never extended.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from robocell.dbstore import sqlite_open
from robocell.errors import RobocellError
from robocell.eval.release.events import RECORD_COLUMNS, Event
from robocell.eval.release.ledger import (
    CERTIFICATE_INDEX_SQL,
    LEDGER_FORMAT,
    LedgerConflict,
    LedgerUnavailable,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('CERTIFIED', 'RELEASED', 'REJECTED', 'DISPUTED')),
    contract_id TEXT NOT NULL,
    milestone_id TEXT NOT NULL,
    certificate_sha256 TEXT,
    recorded_at TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL UNIQUE,
    row_hash TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS events_by_milestone ON events (contract_id, milestone_id, seq);
CREATE UNIQUE INDEX IF NOT EXISTS one_release_per_milestone
    ON events (contract_id, milestone_id) WHERE kind = 'RELEASED';
CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
"""


class SqliteStore:
    """A ledger in one SQLite file; ``create=False`` refuses a missing file rather than make one."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        missing = LedgerUnavailable(
            f"{self.path}: no ledger here (create one with `robocell ledger init`)"
        )
        self._conn = sqlite_open(self.path, create, "ledger", missing, RobocellError, self._error)
        if create:
            self._create_schema()
        self._check_format()
        self._identity = _identity(self.path)

    def _error(self, exc: sqlite3.Error) -> RobocellError:
        """A one-line error for an SQLite failure on this file."""
        if isinstance(exc, sqlite3.OperationalError):
            return LedgerUnavailable(
                f"{self.path}: cannot open or write the ledger ({exc}); check the path and its "
                "permissions"
            )
        return RobocellError(f"{self.path}: not a ledger ({exc})")

    def _create_schema(self) -> None:
        try:
            with self._write():
                tables = self._tables()
                if "ledger_meta" in tables:
                    self._conn.execute(CERTIFICATE_INDEX_SQL)
                    return
                if tables:
                    raise RobocellError(
                        f"{self.path}: an SQLite database with other tables "
                        f"({', '.join(sorted(tables))}), not a ledger; refusing to add ledger "
                        "tables to it (choose another --ledger)"
                    )
                for statement in [*_SCHEMA.split(";\n"), CERTIFICATE_INDEX_SQL]:
                    if statement.strip():
                        self._conn.execute(statement)
                self._conn.execute(
                    "INSERT INTO ledger_meta (key, value) VALUES ('format', ?)", (LEDGER_FORMAT,)
                )
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _tables(self) -> set[str]:
        rows = self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {row["name"] for row in rows} - {"sqlite_sequence"}

    def _check_format(self) -> None:
        try:
            row = self._conn.execute(
                "SELECT value FROM ledger_meta WHERE key = 'format'"
            ).fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        if row is None or row["value"] != LEDGER_FORMAT:
            found = row["value"] if row else "none"
            raise RobocellError(f"{self.path}: ledger format {found}, expected {LEDGER_FORMAT}")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        try:
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    @contextmanager
    def transaction(self) -> Iterator[_SqliteTransaction]:
        """One exclusive write transaction; an exception rolls every insert back."""
        try:
            with self._write() as conn:
                self._check_still_here()
                yield _SqliteTransaction(conn)
                self._check_still_here()
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _check_still_here(self) -> None:
        """Refuse to write when the path no longer names the file this store opened."""
        if _identity(self.path) != self._identity:
            raise LedgerUnavailable(
                f"{self.path}: the ledger file was removed or replaced while it was open; "
                "nothing was written (restore it from a backup)"
            )

    def records(self) -> Iterator[dict[str, Any]]:
        """Every row as a dict of column values, by sequence number."""
        return _records(self._conn)

    def history(self, contract_id: str, milestone_id: str) -> list[Event]:
        """One milestone's entries, by sequence number."""
        return _history(self._conn, contract_id, milestone_id)

    def issued_count(self) -> int:
        """The AUTOINCREMENT high-water mark: survives deletion of the last rows."""
        return _issued_count(self._conn)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


class _SqliteTransaction:
    """The view a decision gets inside ``BEGIN IMMEDIATE``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def head(self) -> Event | None:
        row = self._conn.execute(
            f"SELECT {', '.join(RECORD_COLUMNS)} FROM events ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return Event.from_record(dict(row)) if row else None

    def records(self) -> Iterator[dict[str, Any]]:
        return _records(self._conn)

    def issued_count(self) -> int:
        return _issued_count(self._conn)

    def history(self, contract_id: str, milestone_id: str) -> list[Event]:
        return _history(self._conn, contract_id, milestone_id)

    def insert(self, event: Event) -> None:
        record = event.to_record()
        placeholders = ", ".join(f":{name}" for name in RECORD_COLUMNS)
        try:
            self._conn.execute(
                f"INSERT INTO events ({', '.join(RECORD_COLUMNS)}) VALUES ({placeholders})", record
            )
        except sqlite3.IntegrityError as exc:
            raise LedgerConflict(
                f"ledger refused entry {event.seq} ({event.kind} "
                f"{event.contract_id}/{event.milestone_id}): {exc}"
            ) from None


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``; None when there is none."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


def _history(conn: sqlite3.Connection, contract_id: str, milestone_id: str) -> list[Event]:
    rows = conn.execute(
        f"SELECT {', '.join(RECORD_COLUMNS)} FROM events "
        "WHERE contract_id = ? AND milestone_id = ? ORDER BY seq",
        (contract_id, milestone_id),
    )
    return [Event.from_record(dict(row)) for row in rows]


def _records(conn: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    for row in conn.execute(f"SELECT {', '.join(RECORD_COLUMNS)} FROM events ORDER BY seq"):
        yield dict(row)


def _issued_count(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    return int(row["seq"]) if row else 0
