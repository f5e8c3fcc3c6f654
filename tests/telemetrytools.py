"""Telemetry stores as tests see them: a URL, and raw SQL that bypasses the store's rules."""

from __future__ import annotations

import sqlite3
from pathlib import Path


class Backend:
    """A store as the tests see it: its URL and raw SQL with the append-only triggers off."""

    def __init__(self, name: str, url: str, path: Path | None = None) -> None:
        self.name, self.url, self.path = name, url, path

    def tamper(self, *statements: str) -> None:
        """Run ``statements`` as someone with write access to the database files would."""
        if self.path is not None:
            conn = sqlite3.connect(self.path)
            for (trigger,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'"):
                conn.execute(f"DROP TRIGGER {trigger}")
            for statement in statements:
                conn.execute(statement)
            conn.commit()
            conn.close()
            return
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")
            for statement in statements:
                conn.execute(statement)

    def attempt(self, statement: str) -> str:
        """Run ``statement`` as an ordinary client; the error, or "" if it went through."""
        if self.path is not None:
            conn = sqlite3.connect(self.path)
            try:
                conn.execute(statement)
                conn.commit()
                return ""
            except sqlite3.Error as exc:
                return str(exc)
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            try:
                conn.execute(statement)
                return ""
            except psycopg.Error as exc:
                return str(exc)
