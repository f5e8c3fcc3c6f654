"""The two ledger stores as the tests see them: a URL, raw SQL, and tampering behind triggers.

Each backend opens the same ledger through ``open_ledger(backend.url)`` and offers what an
attacker with database access has: :meth:`tamper` runs SQL with the append-only triggers out
of the way (SQLite: dropped; PostgreSQL: ``session_replication_role = replica``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


class SqliteBackend:
    """A ledger file."""

    name = "sqlite"
    transaction_module = "robocell.eval.release.store_sqlite:_SqliteTransaction"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a read."""
        conn = sqlite3.connect(self.path)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def attempt(self, sql: str) -> str:
        """Run ``sql`` as any client would; the error message, or "" if it went through."""
        conn = sqlite3.connect(self.path)
        try:
            conn.execute(sql)
            conn.commit()
            return ""
        except sqlite3.Error as exc:
            return str(exc)
        finally:
            conn.close()

    def tamper(self, *statements: str) -> None:
        """Drop the append-only triggers, then run ``statements``."""
        conn = sqlite3.connect(self.path)
        conn.execute("DROP TRIGGER IF EXISTS events_append_only_update")
        conn.execute("DROP TRIGGER IF EXISTS events_append_only_delete")
        for statement in statements:
            conn.execute(statement)
        conn.commit()
        conn.close()

    @staticmethod
    def set_issued(seq: int) -> str:
        """SQL that lowers the high-water mark of issued entries to ``seq``."""
        return f"UPDATE sqlite_sequence SET seq = {seq} WHERE name = 'events'"


class PostgresBackend:
    """A ledger in a fresh database of the test server."""

    name = "postgresql"
    transaction_module = "robocell.eval.release.store_postgres:_PostgresTransaction"

    def __init__(self, url: str) -> None:
        self.url = url

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a read."""
        with self._connect() as conn:
            return conn.execute(sql).fetchall()

    def attempt(self, sql: str) -> str:
        """Run ``sql`` as any client would; the error message, or "" if it went through."""
        import psycopg

        with self._connect() as conn:
            try:
                conn.execute(sql)
                return ""
            except psycopg.Error as exc:
                return str(exc)

    def tamper(self, *statements: str) -> None:
        """Run ``statements`` with every trigger off (a superuser's replica session)."""
        with self._connect() as conn:
            conn.execute("SET session_replication_role = replica")
            for statement in statements:
                conn.execute(statement)

    @staticmethod
    def set_issued(seq: int) -> str:
        """SQL that lowers the high-water mark of issued entries to ``seq``."""
        return f"UPDATE events_issued SET seq = {seq}"
