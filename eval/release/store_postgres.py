"""PostgreSQL storage for the release ledger: the server backend behind :class:`LedgerStore`.

``--ledger postgresql://USER@HOST:PORT/DBNAME`` (psycopg 3, the ``postgres`` extra). The same
guarantees as SQLite, from the server:

* **exclusive writes** — every write transaction starts with ``LOCK TABLE events IN EXCLUSIVE
  MODE`` (readers go on; writers queue), runs at SERIALIZABLE isolation, and waits at most
  :data:`LOCK_TIMEOUT_S` for the lock. A serialisation failure or deadlock becomes
  :class:`~robocell.eval.release.ledger.TransientConflict`, and the ledger runs the whole
  decision again;
* **exactly one RELEASED per milestone, and per certificate** — partial UNIQUE indexes,
  whatever the code does;
* **append-only** — triggers refuse UPDATE, DELETE and TRUNCATE of ``events``; an insert
  trigger admits only the entry after the last one issued and records it in
  ``events_issued``, the high-water mark that reveals rows deleted from the end (itself
  refusing to shrink or go);
* **crash-safe** — a transaction is all or nothing; a client killed mid-transaction leaves
  nothing behind (the server rolls back when the connection drops).

A database is made a ledger only when it has no ``events`` table of its own. The ledger's
tables live in the connection's schema (``search_path``; add ``?options=-csearch_path%3DNAME``
to the URL to choose another).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from robocell.dbstore import (
    first_line,
    import_psycopg,
    postgres_connect,
    postgres_errors,
    redacted,
)
from robocell.errors import RobocellError
from robocell.eval.release.events import RECORD_COLUMNS, Event
from robocell.eval.release.ledger import (
    CERTIFICATE_INDEX_SQL,
    LEDGER_FORMAT,
    LedgerConflict,
    LedgerUnavailable,
)

_SCHEMA = """
CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events (
    seq BIGINT PRIMARY KEY CHECK (seq > 0),
    kind TEXT NOT NULL CHECK (kind IN ('CERTIFIED', 'RELEASED', 'REJECTED', 'DISPUTED')),
    contract_id TEXT NOT NULL,
    milestone_id TEXT NOT NULL,
    certificate_sha256 TEXT,
    recorded_at TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL UNIQUE,
    row_hash TEXT NOT NULL UNIQUE
);
CREATE INDEX events_by_milestone ON events (contract_id, milestone_id, seq);
CREATE UNIQUE INDEX one_release_per_milestone
    ON events (contract_id, milestone_id) WHERE kind = 'RELEASED';
CREATE TABLE events_issued (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    seq BIGINT NOT NULL
);
INSERT INTO events_issued (seq) VALUES (0);
CREATE FUNCTION robocell_ledger_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only' USING ERRCODE = 'restrict_violation';
END $$;
CREATE FUNCTION robocell_ledger_issue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE events_issued SET seq = NEW.seq WHERE seq = NEW.seq - 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'entry % does not follow the last entry issued', NEW.seq
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE FUNCTION robocell_ledger_issued_grows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq <> OLD.seq + 1 THEN
        RAISE EXCEPTION 'the issued count only grows' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION robocell_ledger_refuse();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION robocell_ledger_refuse();
CREATE TRIGGER events_in_sequence BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION robocell_ledger_issue();
CREATE TRIGGER events_issued_grows BEFORE UPDATE ON events_issued
    FOR EACH ROW EXECUTE FUNCTION robocell_ledger_issued_grows();
CREATE TRIGGER events_issued_stays BEFORE DELETE ON events_issued
    FOR EACH ROW EXECUTE FUNCTION robocell_ledger_refuse();
CREATE TRIGGER events_issued_no_truncate BEFORE TRUNCATE ON events_issued
    FOR EACH STATEMENT EXECUTE FUNCTION robocell_ledger_refuse()
"""
_SELECT = f"SELECT {', '.join(RECORD_COLUMNS)} FROM events"
_INSERT = (
    f"INSERT INTO events ({', '.join(RECORD_COLUMNS)}) "
    f"VALUES ({', '.join(f'%({name})s' for name in RECORD_COLUMNS)})"
)
# Any key: serialises schema creation by concurrent first openers of one database.
_SCHEMA_LOCK_KEY = 0x726F626F63656C6C


class PostgresStore:
    """A ledger in a PostgreSQL database; ``create=False`` refuses a database without one."""

    def __init__(self, url: str, create: bool = True) -> None:
        self.location = redacted(url)
        self._psycopg = import_psycopg("ledger")
        self._conn = self._connect(url)
        try:
            self._open(create)
        except BaseException:
            self._conn.close()
            raise

    def _connect(self, url: str) -> Any:
        return postgres_connect(self._psycopg, url, self.location, LedgerUnavailable)

    def _open(self, create: bool) -> None:
        with self._errors():
            if create:
                self._create_schema()
            elif not self._has_table("ledger_meta"):
                raise LedgerUnavailable(
                    f"{self.location}: no ledger here (create one with `robocell ledger init`)"
                )
            self._check_format()

    def _create_schema(self) -> None:
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
            if self._has_table("ledger_meta"):
                self._conn.execute(CERTIFICATE_INDEX_SQL)
                return
            if self._has_table("events"):
                raise RobocellError(
                    f"{self.location}: the database has an events table but no ledger; "
                    "refusing to use it (choose another database or schema)"
                )
            self._conn.execute(_SCHEMA)  # no parameters: one multi-statement query
            self._conn.execute(CERTIFICATE_INDEX_SQL)
            self._conn.execute(
                "INSERT INTO ledger_meta (key, value) VALUES ('format', %s)", (LEDGER_FORMAT,)
            )

    def _has_table(self, name: str) -> bool:
        row = self._conn.execute("SELECT to_regclass(%s) AS found", (name,)).fetchone()
        return row is not None and row["found"] is not None

    def _check_format(self) -> None:
        row = self._conn.execute("SELECT value FROM ledger_meta WHERE key = 'format'").fetchone()
        if row is None or row["value"] != LEDGER_FORMAT:
            found = row["value"] if row else "none"
            raise RobocellError(f"{self.location}: ledger format {found}, expected {LEDGER_FORMAT}")

    def _errors(self) -> AbstractContextManager[None]:
        """Server errors as one-line messages; serialisation failures as TransientConflict."""
        return postgres_errors(self._psycopg, self.location, "the ledger", LedgerUnavailable)

    @contextmanager
    def transaction(self) -> Iterator[_PostgresTransaction]:
        """One exclusive, serialisable write transaction; an exception rolls it all back."""
        with self._errors(), self._conn.transaction():
            self._conn.execute("LOCK TABLE events IN EXCLUSIVE MODE")
            yield _PostgresTransaction(self._conn, self._psycopg)

    def records(self) -> Iterator[dict[str, Any]]:
        """Every row as a dict of column values, by sequence number."""
        with self._errors():
            return iter(_records(self._conn))

    def history(self, contract_id: str, milestone_id: str) -> list[Event]:
        """One milestone's entries, by sequence number."""
        with self._errors():
            return _history(self._conn, contract_id, milestone_id)

    def issued_count(self) -> int:
        """The high-water mark the insert trigger keeps: survives deletion of the last rows."""
        with self._errors():
            return _issued_count(self._conn)

    def close(self) -> None:
        """Close the connection (an open transaction rolls back)."""
        self._conn.close()


class _PostgresTransaction:
    """The view a decision gets while holding the exclusive lock."""

    def __init__(self, conn: Any, psycopg: Any) -> None:
        self._conn = conn
        self._psycopg = psycopg

    def head(self) -> Event | None:
        row = self._conn.execute(f"{_SELECT} ORDER BY seq DESC LIMIT 1").fetchone()
        return Event.from_record(row) if row else None

    def records(self) -> Iterator[dict[str, Any]]:
        return iter(_records(self._conn))

    def issued_count(self) -> int:
        return _issued_count(self._conn)

    def history(self, contract_id: str, milestone_id: str) -> list[Event]:
        return _history(self._conn, contract_id, milestone_id)

    def insert(self, event: Event) -> None:
        try:
            self._conn.execute(_INSERT, event.to_record())
        except self._psycopg.IntegrityError as exc:
            raise LedgerConflict(
                f"ledger refused entry {event.seq} ({event.kind} "
                f"{event.contract_id}/{event.milestone_id}): {first_line(exc)}"
            ) from None


def _records(conn: Any) -> list[dict[str, Any]]:
    return conn.execute(f"{_SELECT} ORDER BY seq").fetchall()


def _history(conn: Any, contract_id: str, milestone_id: str) -> list[Event]:
    rows = conn.execute(
        f"{_SELECT} WHERE contract_id = %s AND milestone_id = %s ORDER BY seq",
        (contract_id, milestone_id),
    ).fetchall()
    return [Event.from_record(row) for row in rows]


def _issued_count(conn: Any) -> int:
    row = conn.execute("SELECT seq FROM events_issued").fetchone()
    return int(row["seq"]) if row else 0
