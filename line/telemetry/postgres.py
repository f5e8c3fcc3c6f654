"""PostgreSQL backend of the telemetry store: ``postgresql://USER@HOST:PORT/DBNAME`` (psycopg 3).

* **one writer per chain** — a write takes a transaction-scoped advisory lock on its chain
  ``(line, cell)`` before it reads the head, so two writers of one chain queue while writers
  of other chains (other lines, other cells) go on beside them. Writes run at READ COMMITTED:
  the head read after the lock is granted sees the last batch committed before it, and the
  lock, not a serialisable snapshot, keeps one chain's batches in order. A deadlock or
  serialisation failure is :class:`~robocell.dbstore.TransientConflict` and runs again;
* **consistent reads** — ``verify``, ``show`` and ``export`` read in one REPEATABLE READ
  snapshot, so a batch committed mid-read is seen whole or not at all;
* **append-only** — triggers refuse UPDATE, DELETE and TRUNCATE of batches, rows and events,
  and let a chain's record change only by counting one more batch;
* **crash-safe** — a batch is one transaction; a writer killed mid-batch leaves nothing of it.

The tables are named ``telemetry_*``, so one database may hold the release ledger too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from robocell.dbstore import (
    StoreUnavailable,
    import_psycopg,
    postgres_connect,
    postgres_errors,
    redacted,
)
from robocell.errors import RobocellError
from robocell.line.telemetry.store import TELEMETRY_FORMAT

_APPEND_ONLY_TABLES = ("telemetry_batches", "telemetry_rows", "telemetry_events")
_TABLES = (*_APPEND_ONLY_TABLES, "telemetry_chains")
_SCHEMA = """
CREATE TABLE telemetry_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE telemetry_chains (
    line TEXT NOT NULL, cell TEXT NOT NULL, public_key_pem TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL, batches BIGINT NOT NULL, PRIMARY KEY (line, cell));
CREATE TABLE telemetry_batches (
    line TEXT NOT NULL, cell TEXT NOT NULL, seq BIGINT NOT NULL CHECK (seq > 0),
    prev_hash TEXT NOT NULL, first_part BIGINT NOT NULL, last_part BIGINT NOT NULL,
    rows_sha256 TEXT NOT NULL, batch_hash TEXT NOT NULL, envelope TEXT NOT NULL,
    PRIMARY KEY (line, cell, seq));
CREATE TABLE telemetry_rows (
    line TEXT NOT NULL, cell TEXT NOT NULL, part BIGINT NOT NULL, seq BIGINT NOT NULL,
    bundle_sha256 TEXT NOT NULL, calibration_version BIGINT NOT NULL,
    sim_time_s DOUBLE PRECISION NOT NULL, success BOOLEAN NOT NULL,
    energy_j DOUBLE PRECISION NOT NULL, co2e_g DOUBLE PRECISION NOT NULL,
    cycle_time_s DOUBLE PRECISION NOT NULL, quality TEXT NOT NULL, conditions TEXT NOT NULL,
    PRIMARY KEY (line, cell, part));
CREATE TABLE telemetry_events (
    line TEXT NOT NULL, cell TEXT NOT NULL, seq BIGINT NOT NULL, position INTEGER NOT NULL,
    type TEXT NOT NULL, part BIGINT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (line, cell, seq, position));
CREATE FUNCTION robocell_telemetry_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'telemetry is append-only' USING ERRCODE = 'restrict_violation';
END $$;
CREATE FUNCTION robocell_telemetry_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.batches <> OLD.batches + 1 OR NEW.line <> OLD.line OR NEW.cell <> OLD.cell
       OR NEW.public_key_pem <> OLD.public_key_pem
       OR NEW.key_fingerprint <> OLD.key_fingerprint THEN
        RAISE EXCEPTION 'a chain record only counts one more batch'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER telemetry_chains_count BEFORE UPDATE ON telemetry_chains
    FOR EACH ROW EXECUTE FUNCTION robocell_telemetry_count();
CREATE TRIGGER telemetry_chains_stay BEFORE DELETE ON telemetry_chains
    FOR EACH ROW EXECUTE FUNCTION robocell_telemetry_refuse();
"""
_APPEND_ONLY = "".join(
    f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION robocell_telemetry_refuse();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION robocell_telemetry_refuse();
"""
    for table in _APPEND_ONLY_TABLES
)
# Any key: serialises schema creation by concurrent first openers of one database.
_SCHEMA_LOCK_KEY = 0x74656C656D657472


class _PostgresSession:
    """Queries on the store's connection inside one transaction."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        cursor = self._conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []

    def execute_many(self, sql: str, params: Sequence[Mapping[str, Any]]) -> None:
        if params:
            with self._conn.cursor() as cursor:
                cursor.executemany(sql, params)


class PostgresBackend:
    """A telemetry store in a PostgreSQL database; ``create=False`` refuses one without it."""

    def __init__(self, url: str, create: bool = True) -> None:
        self.location = redacted(url)
        self._psycopg = import_psycopg("telemetry store")
        self._conn = postgres_connect(self._psycopg, url, self.location)
        try:
            with self._errors():
                self._open(create)
        except BaseException:
            self._conn.close()
            raise

    def _open(self, create: bool) -> None:
        if create:
            self._create_schema()
        elif not self._has_table("telemetry_meta"):
            raise StoreUnavailable(f"{self.location}: no telemetry store here")
        row = self._conn.execute("SELECT value FROM telemetry_meta WHERE key = 'format'").fetchone()
        if row is None or row["value"] != TELEMETRY_FORMAT:
            found = row["value"] if row else "none"
            raise RobocellError(
                f"{self.location}: telemetry format {found}, expected {TELEMETRY_FORMAT}"
            )

    def _create_schema(self) -> None:
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
            if self._has_table("telemetry_meta"):
                return
            if any(self._has_table(table) for table in _TABLES):
                raise RobocellError(
                    f"{self.location}: the database has telemetry tables but no telemetry "
                    "store; refusing to use it (choose another database or schema)"
                )
            self._conn.execute(_SCHEMA + _APPEND_ONLY)  # no parameters: one multi-statement query
            self._conn.execute(
                "INSERT INTO telemetry_meta (key, value) VALUES ('format', %s)", (TELEMETRY_FORMAT,)
            )

    def _has_table(self, name: str) -> bool:
        row = self._conn.execute("SELECT to_regclass(%s) AS found", (name,)).fetchone()
        return row is not None and row["found"] is not None

    def _errors(self) -> AbstractContextManager[None]:
        """Server errors as one-line messages; serialisation failures as TransientConflict."""
        return postgres_errors(
            self._psycopg, self.location, "the chain", StoreUnavailable, refused_write=True
        )

    @contextmanager
    def _transaction(self, isolation: str) -> Iterator[_PostgresSession]:
        with self._errors():
            self._conn.isolation_level = getattr(self._psycopg.IsolationLevel, isolation)
            with self._conn.transaction():
                yield _PostgresSession(self._conn)

    @contextmanager
    def write(self, line: str, cell: str) -> Iterator[_PostgresSession]:
        """A READ COMMITTED transaction holding chain ``(line, cell)``'s advisory lock."""
        with self._transaction("READ_COMMITTED") as session:
            session.query(
                "SELECT pg_advisory_xact_lock(hashtextextended(%(chain)s, 0))",
                {"chain": f"{line}\n{cell}"},
            )
            yield session

    def snapshot(self) -> Iterator[_PostgresSession]:
        """A REPEATABLE READ transaction: one committed state for every read in it."""
        return self._transaction("REPEATABLE_READ")

    def close(self) -> None:
        """Close the connection (an open transaction rolls back)."""
        self._conn.close()
