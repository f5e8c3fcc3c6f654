"""SQLite storage for the release ledger: the embedded default behind :class:`LedgerStore`.

Durability and exclusivity come from SQLite itself: every write runs in ``BEGIN IMMEDIATE``
(the write lock is taken before anything is read, so two processes never decide on the same
head), the rollback journal with ``synchronous=FULL`` makes a commit all-or-nothing across a
crash or power cut, a partial UNIQUE index makes a second RELEASED entry for a milestone
impossible whatever the code above does, and triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from robocell.errors import RobocellError
from robocell.eval.release.ledger import Event, LedgerConflict

#: Written into ``ledger_meta``; a file with another format is refused.
LEDGER_FORMAT = "robocell-ledger/1"
#: Seconds a writer waits for another process's transaction before giving up.
BUSY_TIMEOUT_S = 60.0
_COLUMNS = (
    "seq",
    "kind",
    "contract_id",
    "milestone_id",
    "certificate_sha256",
    "recorded_at",
    "body",
    "prev_hash",
    "row_hash",
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
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = self._connect(str(self.path), uri=False)
            self._create_schema()
        else:
            if not self.path.is_file():
                raise RobocellError(f"{self.path}: no ledger here")
            # mode=rw, not ro: opening must be able to roll back a journal left by a crash.
            self._conn = self._connect(f"{self.path.resolve().as_uri()}?mode=rw", uri=True)
        self._check_format()

    def _connect(self, target: str, uri: bool) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; every write is an explicit
        # BEGIN IMMEDIATE ... COMMIT below.
        conn = sqlite3.connect(target, uri=uri, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise RobocellError(f"{self.path}: not a ledger ({exc})") from None
        return conn

    def _create_schema(self) -> None:
        try:
            with self._write():
                for statement in _SCHEMA.split(";\n"):
                    if statement.strip():
                        self._conn.execute(statement)
                self._conn.execute(
                    "INSERT OR IGNORE INTO ledger_meta (key, value) VALUES ('format', ?)",
                    (LEDGER_FORMAT,),
                )
        except sqlite3.DatabaseError as exc:
            raise RobocellError(f"{self.path}: not a ledger ({exc})") from None

    def _check_format(self) -> None:
        try:
            row = self._conn.execute(
                "SELECT value FROM ledger_meta WHERE key = 'format'"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise RobocellError(f"{self.path}: not a ledger ({exc})") from None
        if row is None or row["value"] != LEDGER_FORMAT:
            found = row["value"] if row else "none"
            raise RobocellError(f"{self.path}: ledger format {found}, expected {LEDGER_FORMAT}")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
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
        with self._write() as conn:
            yield _SqliteTransaction(conn)

    def records(self) -> Iterator[dict[str, Any]]:
        """Every row as a dict of column values, by sequence number."""
        cursor = self._conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM events ORDER BY seq")
        for row in cursor:
            yield dict(row)

    def history(self, contract_id: str, milestone_id: str) -> list[Event]:
        """One milestone's entries, by sequence number."""
        return _history(self._conn, contract_id, milestone_id)

    def issued_count(self) -> int:
        """The AUTOINCREMENT high-water mark: survives deletion of the last rows."""
        row = self._conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return int(row["seq"]) if row else 0

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


class _SqliteTransaction:
    """The view a decision gets inside ``BEGIN IMMEDIATE``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def head(self) -> Event | None:
        row = self._conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM events ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return Event.from_record(dict(row)) if row else None

    def history(self, contract_id: str, milestone_id: str) -> list[Event]:
        return _history(self._conn, contract_id, milestone_id)

    def insert(self, event: Event) -> None:
        record = event.to_record()
        placeholders = ", ".join(f":{name}" for name in _COLUMNS)
        try:
            self._conn.execute(
                f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES ({placeholders})", record
            )
        except sqlite3.IntegrityError as exc:
            raise LedgerConflict(
                f"ledger refused entry {event.seq} ({event.kind} "
                f"{event.contract_id}/{event.milestone_id}): {exc}"
            ) from None


def _history(conn: sqlite3.Connection, contract_id: str, milestone_id: str) -> list[Event]:
    rows = conn.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM events "
        "WHERE contract_id = ? AND milestone_id = ? ORDER BY seq",
        (contract_id, milestone_id),
    )
    return [Event.from_record(dict(row)) for row in rows]
